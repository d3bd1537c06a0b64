# -*- shell-script -*-
# bash completion for igcli 0.1.0 (static: completing never starts Python).
# Generated from the CLI by `python -m igcli.cli.docs`; do not edit.
# Install: igcli completions bash > ~/.local/share/bash-completion/completions/igcli
#   (loaded on first use by the bash-completion package; without it, source the file from ~/.bashrc).

# _igcli_spec COMMAND: its subcommands, its options and the options taking values (NAME:COUNT).
_igcli_spec() {
    case $1 in
    'igcli')
        subs='attribute calibrate completions evaluate index render split'
        opts='--version -h --help'
        vopts='  '
        ;;
    'igcli attribute')
        subs=''
        opts='-o --out -m --model --weights --trust-model-file --resize --crop --mean --std --interpolation --method --rule --steps --schedule --baseline --max-sigma --fraction --max-dist --anchors --target --labels --output --seed -b --batch-size -j --workers --device --amp --dtype --reduce --shard-size --resume --overwrite --shard -0 --null -q --quiet --json -h --help'
        vopts=' -o:1 --out:1 -m:1 --model:1 --weights:1 --resize:1 --crop:1 --mean:1 --std:1 --interpolation:1 --method:1 --rule:1 --steps:1 --schedule:1 --baseline:1 --max-sigma:1 --fraction:1 --max-dist:1 --anchors:1 --target:1 --labels:1 --output:1 --seed:1 -b:1 --batch-size:1 -j:1 --workers:1 --device:1 --dtype:1 --reduce:1 --shard-size:1 --shard:1 '
        ;;
    'igcli calibrate')
        subs=''
        opts='-m --model --weights --trust-model-file --resize --crop --mean --std --interpolation --method -n --steps -k --probe-steps --images --statistic --baseline --max-sigma --fraction --max-dist --anchors --target --labels --output --seed -b --batch-size -j --workers --device --amp -o --out --plot -0 --null -q --quiet --json -h --help'
        vopts=' -m:1 --model:1 --weights:1 --resize:1 --crop:1 --mean:1 --std:1 --interpolation:1 --method:1 -n:1 --steps:1 -k:1 --probe-steps:1 --images:1 --statistic:1 --baseline:1 --max-sigma:1 --fraction:1 --max-dist:1 --anchors:1 --target:1 --labels:1 --output:1 --seed:1 -b:1 --batch-size:1 -j:1 --workers:1 --device:1 -o:1 --out:1 --plot:1 '
        ;;
    'igcli completions')
        subs=''
        opts='-h --help'
        vopts='  '
        ;;
    'igcli evaluate')
        subs=''
        opts='--metric --rank -m --model --weights --trust-model-file --masks --boxes --limit --root --seed -b --batch-size --device --csv --plot -q --quiet --json -h --help'
        vopts=' --metric:1 --rank:1 -m:1 --model:1 --weights:1 --masks:1 --boxes:1 --limit:1 --root:1 --seed:1 -b:1 --batch-size:1 --device:1 --csv:1 --plot:1 '
        ;;
    'igcli index')
        subs=''
        opts='-q --quiet -h --help'
        vopts='  '
        ;;
    'igcli render')
        subs=''
        opts='-o --out --percentile --limit --root -q --quiet -h --help'
        vopts=' -o:1 --out:1 --percentile:1 --limit:1 --root:1 '
        ;;
    'igcli split')
        subs=''
        opts='-o --out --psi --tolerance -m --model --weights --trust-model-file --resize --crop --mean --std --interpolation --rule --steps --schedule --baseline --target --labels --output --seed -b --batch-size -j --workers --device --amp --dtype --reduce --shard-size --resume --overwrite --shard --plot -0 --null -q --quiet --json -h --help'
        vopts=' -o:1 --out:1 --psi:1 --tolerance:1 -m:1 --model:1 --weights:1 --resize:1 --crop:1 --mean:1 --std:1 --interpolation:1 --rule:1 --steps:1 --schedule:1 --baseline:1 --target:1 --labels:1 --output:1 --seed:1 -b:1 --batch-size:1 -j:1 --workers:1 --device:1 --dtype:1 --reduce:1 --shard-size:1 --shard:1 --plot:1 '
        ;;
    *) subs='' opts='' vopts='' ;;
    esac
}

# _igcli_value COMMAND OPTION: completes OPTION's value (nothing for numbers).
_igcli_value() {
    case "$1 $2" in
    'igcli attribute -o'|'igcli attribute --out') _igcli_files ;;
    'igcli attribute -m'|'igcli attribute --model') _igcli_files ;;
    'igcli attribute --weights') _igcli_files ;;
    'igcli attribute --resize') : ;;
    'igcli attribute --crop') : ;;
    'igcli attribute --mean') _igcli_files ;;
    'igcli attribute --std') _igcli_files ;;
    'igcli attribute --interpolation') _igcli_words 'nearest' 'bilinear' 'bicubic' ;;
    'igcli attribute --method') _igcli_words 'vg' 'ig' 'blurig' 'gig' 'idgi' ;;
    'igcli attribute --rule') _igcli_words 'riemann' 'idgi' ;;
    'igcli attribute --steps') : ;;
    'igcli attribute --schedule') _igcli_files ;;
    'igcli attribute --baseline') _igcli_files ;;
    'igcli attribute --max-sigma') : ;;
    'igcli attribute --fraction') : ;;
    'igcli attribute --max-dist') : ;;
    'igcli attribute --anchors') : ;;
    'igcli attribute --target') _igcli_files ;;
    'igcli attribute --labels') _igcli_files ;;
    'igcli attribute --output') _igcli_words 'prob' 'logit' ;;
    'igcli attribute --seed') : ;;
    'igcli attribute -b'|'igcli attribute --batch-size') : ;;
    'igcli attribute -j'|'igcli attribute --workers') : ;;
    'igcli attribute --device') _igcli_files ;;
    'igcli attribute --dtype') _igcli_words 'float32' 'float16' ;;
    'igcli attribute --reduce') _igcli_words 'none' 'sum' 'abs-sum' ;;
    'igcli attribute --shard-size') : ;;
    'igcli attribute --shard') _igcli_files ;;
    'igcli calibrate -m'|'igcli calibrate --model') _igcli_files ;;
    'igcli calibrate --weights') _igcli_files ;;
    'igcli calibrate --resize') : ;;
    'igcli calibrate --crop') : ;;
    'igcli calibrate --mean') _igcli_files ;;
    'igcli calibrate --std') _igcli_files ;;
    'igcli calibrate --interpolation') _igcli_words 'nearest' 'bilinear' 'bicubic' ;;
    'igcli calibrate --method') _igcli_words 'ig' 'blurig' 'gig' ;;
    'igcli calibrate -n'|'igcli calibrate --steps') : ;;
    'igcli calibrate -k'|'igcli calibrate --probe-steps') : ;;
    'igcli calibrate --images') : ;;
    'igcli calibrate --statistic') _igcli_words 'mean' 'median' ;;
    'igcli calibrate --baseline') _igcli_files ;;
    'igcli calibrate --max-sigma') : ;;
    'igcli calibrate --fraction') : ;;
    'igcli calibrate --max-dist') : ;;
    'igcli calibrate --anchors') : ;;
    'igcli calibrate --target') _igcli_files ;;
    'igcli calibrate --labels') _igcli_files ;;
    'igcli calibrate --output') _igcli_words 'prob' 'logit' ;;
    'igcli calibrate --seed') : ;;
    'igcli calibrate -b'|'igcli calibrate --batch-size') : ;;
    'igcli calibrate -j'|'igcli calibrate --workers') : ;;
    'igcli calibrate --device') _igcli_files ;;
    'igcli calibrate -o'|'igcli calibrate --out') _igcli_files ;;
    'igcli calibrate --plot') _igcli_files ;;
    'igcli evaluate --metric') _igcli_files ;;
    'igcli evaluate --rank') _igcli_files ;;
    'igcli evaluate -m'|'igcli evaluate --model') _igcli_files ;;
    'igcli evaluate --weights') _igcli_files ;;
    'igcli evaluate --masks') _igcli_files ;;
    'igcli evaluate --boxes') _igcli_files ;;
    'igcli evaluate --limit') : ;;
    'igcli evaluate --root') _igcli_files ;;
    'igcli evaluate --seed') : ;;
    'igcli evaluate -b'|'igcli evaluate --batch-size') : ;;
    'igcli evaluate --device') _igcli_files ;;
    'igcli evaluate --csv') _igcli_files ;;
    'igcli evaluate --plot') _igcli_files ;;
    'igcli render -o'|'igcli render --out') _igcli_files ;;
    'igcli render --percentile') : ;;
    'igcli render --limit') : ;;
    'igcli render --root') _igcli_files ;;
    'igcli split -o'|'igcli split --out') _igcli_files ;;
    'igcli split --psi') _igcli_files ;;
    'igcli split --tolerance') : ;;
    'igcli split -m'|'igcli split --model') _igcli_files ;;
    'igcli split --weights') _igcli_files ;;
    'igcli split --resize') : ;;
    'igcli split --crop') : ;;
    'igcli split --mean') _igcli_files ;;
    'igcli split --std') _igcli_files ;;
    'igcli split --interpolation') _igcli_words 'nearest' 'bilinear' 'bicubic' ;;
    'igcli split --rule') _igcli_words 'riemann' 'idgi' ;;
    'igcli split --steps') : ;;
    'igcli split --schedule') _igcli_files ;;
    'igcli split --baseline') _igcli_files ;;
    'igcli split --target') _igcli_files ;;
    'igcli split --labels') _igcli_files ;;
    'igcli split --output') _igcli_words 'prob' 'logit' ;;
    'igcli split --seed') : ;;
    'igcli split -b'|'igcli split --batch-size') : ;;
    'igcli split -j'|'igcli split --workers') : ;;
    'igcli split --device') _igcli_files ;;
    'igcli split --dtype') _igcli_words 'float32' 'float16' ;;
    'igcli split --reduce') _igcli_words 'none' 'sum' 'abs-sum' ;;
    'igcli split --shard-size') : ;;
    'igcli split --shard') _igcli_files ;;
    'igcli split --plot') _igcli_files ;;
    esac
}

# _igcli_argument COMMAND N: completes the positional argument at position N (from 0).
_igcli_argument() {
    case $1 in
    'igcli attribute')
        if (($2 >= 0)); then _igcli_files; return; fi  # INPUTS
        ;;
    'igcli calibrate')
        if (($2 >= 0)); then _igcli_files; return; fi  # INPUTS
        ;;
    'igcli completions')
        if (($2 >= 0 && $2 < 1)); then _igcli_words 'bash' 'zsh' 'fish'; return; fi  # SHELL
        ;;
    'igcli evaluate')
        if (($2 >= 0)); then _igcli_files; return; fi  # SOURCES
        ;;
    'igcli index')
        if (($2 >= 0 && $2 < 1)); then _igcli_files; return; fi  # OUT
        ;;
    'igcli render')
        if (($2 >= 0 && $2 < 1)); then _igcli_files; return; fi  # SOURCE
        ;;
    'igcli split')
        if (($2 >= 0)); then _igcli_files; return; fi  # INPUTS
        ;;
    esac
}

_igcli_words() {
    local word; COMPREPLY=()
    for word in "$@"; do [[ $word == "$cur"* ]] && COMPREPLY+=("$prefix$word"); done
}

_igcli_files() {
    if [[ -z $prefix ]] && declare -F _filedir >/dev/null; then _filedir; return; fi  # bash-completion
    compopt -o filenames 2>/dev/null
    local name; COMPREPLY=()
    while IFS= read -r name; do COMPREPLY+=("$prefix$name"); done < <(compgen -f -- "$cur")
}

_igcli_dirs() {
    if [[ -z $prefix ]] && declare -F _filedir >/dev/null; then _filedir -d; return; fi
    compopt -o filenames 2>/dev/null
    local name; COMPREPLY=()
    while IFS= read -r name; do COMPREPLY+=("$prefix$name"); done < <(compgen -d -- "$cur")
}

_igcli() {
    local cur=${COMP_WORDS[COMP_CWORD]} prefix="" cmd=igcli option="" word i skip=0 npos=0 dashdash=0
    local subs opts vopts
    COMPREPLY=()
    _igcli_spec "$cmd"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((skip > 0)); then
            [[ $word == = ]] && continue  # --option=value, split at '=' (COMP_WORDBREAKS)
            skip=$((skip - 1))
            continue
        fi
        if ((dashdash)) || [[ $word != -?* ]]; then  # '-' alone is an argument (stdin)
            if ((!dashdash)) && [[ " $subs " == *" $word "* ]]; then
                cmd="$cmd $word" npos=0
                _igcli_spec "$cmd"
            else
                npos=$((npos + 1))
            fi
        elif [[ $word == -- ]]; then
            dashdash=1
        elif [[ $vopts == *" $word:"* ]]; then
            option=$word skip=${vopts#* "$word":} skip=${skip%% *}
        fi
    done
    if ((skip > 0)); then
        [[ $cur == = ]] && cur=''
        _igcli_value "$cmd" "$option"
        return
    fi
    if ((!dashdash)) && [[ $cur == -* ]]; then
        if [[ $cur == --*=* && $vopts == *" ${cur%%=*}:"* ]]; then  # "=" not in COMP_WORDBREAKS
            prefix=${cur%%=*}= option=${cur%%=*} cur=${cur#*=}
            _igcli_value "$cmd" "$option"
        else
            COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        fi
        return
    fi
    if [[ -n $subs ]] && ((!dashdash)); then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    _igcli_argument "$cmd" "$npos"
}

complete -F _igcli igcli
