# fish completion for igcli 0.1.0 (static: completing never starts Python).
# Generated from the CLI by `python -m igcli.cli.docs`; do not edit.
# Install: igcli completions fish > ~/.config/fish/completions/igcli.fish
#   (loaded on first use).

# __igcli_subcommands COMMAND: its subcommands.
function __igcli_subcommands
    switch "$argv"
        case 'igcli'
            printf '%s\n' 'attribute' 'calibrate' 'completions' 'evaluate' 'index' 'render' 'split'
    end
end

# __igcli_arity COMMAND OPTION: how many values OPTION takes (0 for flags and unknown words).
function __igcli_arity
    switch "$argv"
        case 'igcli attribute -o' 'igcli attribute --out' 'igcli attribute -m' 'igcli attribute --model' 'igcli attribute --weights' 'igcli attribute --resize' 'igcli attribute --crop' 'igcli attribute --mean' 'igcli attribute --std' 'igcli attribute --interpolation' 'igcli attribute --method' 'igcli attribute --rule' 'igcli attribute --steps' 'igcli attribute --schedule' 'igcli attribute --baseline' 'igcli attribute --max-sigma' 'igcli attribute --fraction' 'igcli attribute --max-dist' 'igcli attribute --anchors' 'igcli attribute --target' 'igcli attribute --labels' 'igcli attribute --output' 'igcli attribute --seed' 'igcli attribute -b' 'igcli attribute --batch-size' 'igcli attribute -j' 'igcli attribute --workers' 'igcli attribute --device' 'igcli attribute --dtype' 'igcli attribute --reduce' 'igcli attribute --shard-size' 'igcli attribute --shard' 'igcli calibrate -m' 'igcli calibrate --model' 'igcli calibrate --weights' 'igcli calibrate --resize' 'igcli calibrate --crop' 'igcli calibrate --mean' 'igcli calibrate --std' 'igcli calibrate --interpolation' 'igcli calibrate --method' 'igcli calibrate -n' 'igcli calibrate --steps' 'igcli calibrate -k' 'igcli calibrate --probe-steps' 'igcli calibrate --images' 'igcli calibrate --statistic' 'igcli calibrate --baseline' 'igcli calibrate --max-sigma' 'igcli calibrate --fraction' 'igcli calibrate --max-dist' 'igcli calibrate --anchors' 'igcli calibrate --target' 'igcli calibrate --labels' 'igcli calibrate --output' 'igcli calibrate --seed' 'igcli calibrate -b' 'igcli calibrate --batch-size' 'igcli calibrate -j' 'igcli calibrate --workers' 'igcli calibrate --device' 'igcli calibrate -o' 'igcli calibrate --out' 'igcli calibrate --plot' 'igcli evaluate --metric' 'igcli evaluate --rank' 'igcli evaluate -m' 'igcli evaluate --model' 'igcli evaluate --weights' 'igcli evaluate --masks' 'igcli evaluate --boxes' 'igcli evaluate --limit' 'igcli evaluate --root' 'igcli evaluate --seed' 'igcli evaluate -b' 'igcli evaluate --batch-size' 'igcli evaluate --device' 'igcli evaluate --csv' 'igcli evaluate --plot' 'igcli render -o' 'igcli render --out' 'igcli render --percentile' 'igcli render --limit' 'igcli render --root' 'igcli split -o' 'igcli split --out' 'igcli split --psi' 'igcli split --tolerance' 'igcli split -m' 'igcli split --model' 'igcli split --weights' 'igcli split --resize' 'igcli split --crop' 'igcli split --mean' 'igcli split --std' 'igcli split --interpolation' 'igcli split --rule' 'igcli split --steps' 'igcli split --schedule' 'igcli split --baseline' 'igcli split --target' 'igcli split --labels' 'igcli split --output' 'igcli split --seed' 'igcli split -b' 'igcli split --batch-size' 'igcli split -j' 'igcli split --workers' 'igcli split --device' 'igcli split --dtype' 'igcli split --reduce' 'igcli split --shard-size' 'igcli split --shard' 'igcli split --plot'
            echo 1
        case '*'
            echo 0
    end
end

# The command the cursor is in (igcli, igcli attribute, ...), how many arguments it already has and how many
# values the option before the cursor still takes.
function __igcli_state
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmd igcli
    set -l skip 0
    set -l npos 0
    set -l dashdash 0
    for word in $words
        if test $skip -gt 0
            set skip (math $skip - 1)
        else if test $dashdash -eq 0; and string match -q -- '-?*' $word
            if test $word = --
                set dashdash 1
            else
                set skip (__igcli_arity $cmd $word)
            end
        else if test $dashdash -eq 0; and contains -- $word (__igcli_subcommands $cmd)
            set cmd "$cmd $word"
            set npos 0
        else
            set npos (math $npos + 1)
        end
    end
    printf '%s\n' $cmd $npos $skip
end

# True in COMMAND (its words as arguments).
function __igcli_in
    set -l state (__igcli_state)
    test "$state[1]" = "$argv"
end

# True at argument positions FIRST..LAST (from 0; LAST -1: no end) of COMMAND: FIRST LAST COMMAND...
function __igcli_argument
    set -l state (__igcli_state)
    test "$state[1]" = "$argv[3..-1]"; and test $state[3] -eq 0; and test $state[2] -ge $argv[1]
    and begin; test $argv[2] -lt 0; or test $state[2] -le $argv[2]; end
end

complete -c igcli -f  # no file names unless an option or argument takes them

# igcli
complete -c igcli -n '__igcli_in igcli' -a 'attribute' -d 'Compute attribution maps for images and write them to HDF5 shards in OUT.'
complete -c igcli -n '__igcli_in igcli' -a 'calibrate' -d 'Find the sample points that minimise the Riemann error bound (RiemannOpt) and save them as a schedule.'
complete -c igcli -n '__igcli_in igcli' -a 'completions' -d 'Print the completion script for SHELL on stdout.'
complete -c igcli -n '__igcli_in igcli' -a 'evaluate' -d 'Score saved attribution maps: insertion and deletion (idgi.txt §4.3), ABPC and max-sensitivity (split-ig-saturation.txt §3.2), SIC/AIC with normalized entropy or MS-SSIM (idgi.txt §4.4-4.5), JPEG stability (idgi-reproducibility.txt §4.5.2), closed-path error (guided-ig.txt §5.1), localization against masks or boxes (ROC-AUC, best F1, MAE; idgi.txt §4.6) and completeness.'
complete -c igcli -n '__igcli_in igcli' -a 'index' -d 'Rebuild OUT/index.h5 over every complete shard in OUT (each part of a job also does this when it ends).'
complete -c igcli -n '__igcli_in igcli' -a 'render' -d 'Draw each map as the crop the model saw | signed heatmap | overlay (red: for the class, blue: against).'
complete -c igcli -n '__igcli_in igcli' -a 'split' -d 'Split IG: find the saturation point alpha* (the smallest alpha where f exceeds f(x\') + psi (f(x) - f(x\'))), then IG on [0, alpha*] (Left) and [alpha*, 1] (Right) per psi, beside the full IG.'
complete -c igcli -n '__igcli_in igcli' -l 'version' -d 'Print the version.'
complete -c igcli -n '__igcli_in igcli' -s 'h' -l 'help' -d 'Show this message and exit.'

# igcli attribute
complete -c igcli -n '__igcli_in igcli attribute' -s 'o' -l 'out' -r -F -d 'Output folder for the HDF5 shards.'
complete -c igcli -n '__igcli_in igcli attribute' -s 'm' -l 'model' -r -F -d 'torchvision name (resnet50, inception_v3, ...), efficientnet_lite0, a TorchScript or saved-module file, or module:factory / file.py:factory.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'weights' -r -F -d 'State-dict file to load instead of downloading (works offline).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'trust-model-file' -d 'Allow --model FILE to be a whole pickled module. Unpickling runs any code its author put in the file: use only for files you made or trust. TorchScript files and --weights state dicts never need it.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'resize' -x -d 'Resize the short side to this many pixels (default: from the weights, else 256).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'crop' -x -d 'Centre-crop size in pixels (default: from the weights, else 224).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'mean' -r -F -d 'Per-channel normalisation mean, e.g. 0.485,0.456,0.406 (default: from the weights, else ImageNet\'s).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'std' -r -F -d 'Per-channel normalisation std, e.g. 0.229,0.224,0.225 (default: from the weights, else ImageNet\'s).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'interpolation' -x -a 'nearest bilinear bicubic' -d 'Resize interpolation (default: from the weights, else bilinear).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'method' -x -a 'vg ig blurig gig idgi' -d 'vg (plain gradient), ig (straight path), blurig (Blur IG), gig (Guided IG); idgi is short for ig --rule idgi.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'rule' -x -a 'riemann idgi' -d 'How gradients become attributions: riemann or idgi (IDGI, any path method).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'steps' -x -d 'Gradient evaluations along the path [default: 32, or the step count of a schedule file].'
complete -c igcli -n '__igcli_in igcli attribute' -l 'schedule' -r -F -d 'left, right, midpoint, trapezoid, gauss-legendre, comma-separated alphas from 0 to 1, a calibrated schedule FILE.json, or auto (the one igcli calibrate cached for this model, method and steps).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'baseline' -r -F -d 'black, white, blur, uniform, or a file (image, .npy/.pt tensor in model-input space) for ig/gig.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'max-sigma' -x -d 'Blur IG: blur sigma at the path start, pixels [50].'
complete -c igcli -n '__igcli_in igcli attribute' -l 'fraction' -x -d 'Guided IG: fraction of features moved per step [0.25].'
complete -c igcli -n '__igcli_in igcli attribute' -l 'max-dist' -x -d 'Guided IG: largest L1 distance from the straight path, relative [0.02].'
complete -c igcli -n '__igcli_in igcli attribute' -l 'anchors' -x -d 'Guided IG: anchor points on the straight path (0 = none) [0].'
complete -c igcli -n '__igcli_in igcli attribute' -l 'target' -r -F -d 'Class to explain: pred, label (from --labels, a WordNet ID starting the file name, or the parent folder), a class INDEX, or topK.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'labels' -r -F -d 'Labels for --target label: a CSV of path,label, or one label per line for ImageNet validation images (line N labels ..._val_N).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'output' -x -a 'prob logit' -d 'The score explained: the target\'s softmax probability (prob) or its logit.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'seed' -x -d 'Seed for random baselines.'
complete -c igcli -n '__igcli_in igcli attribute' -s 'b' -l 'batch-size' -x -d 'Rows per forward/backward pass, and images per loader batch (default 32 on GPU, 4 on CPU).'
complete -c igcli -n '__igcli_in igcli attribute' -s 'j' -l 'workers' -x -d 'Image-decoding processes (default: half the cores; 0 decodes in the main process).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'device' -r -F -d 'cuda, cuda:1, cpu, ... (default: CUDA when available).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'amp' -d 'Run the model under autocast (float16 on GPU, bfloat16 on CPU).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'dtype' -x -a 'float32 float16' -d 'Storage type of the maps (float16 halves the files; warns when values fall outside its range).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'reduce' -x -a 'none sum abs-sum' -d 'Store (N, C, H, W) maps (none) or (N, H, W): channel sum or sum of |values|.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'shard-size' -x -d 'Rows per output shard (the unit of --resume).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'resume' -d 'Continue a run in OUT: skip inputs already in complete shards.'
complete -c igcli -n '__igcli_in igcli attribute' -l 'overwrite' -d 'Replace igcli\'s files in OUT (this part\'s only, with --shard).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'shard' -r -F -d 'Take part i of n of the inputs, e.g. 0/4 (default: from SLURM_ARRAY_TASK_ID/COUNT).'
complete -c igcli -n '__igcli_in igcli attribute' -s '0' -l 'null' -d 'With -: paths on stdin are separated by NUL bytes (find -print0), for names that contain newlines.'
complete -c igcli -n '__igcli_in igcli attribute' -s 'q' -l 'quiet' -d 'No progress output (skipped inputs and errors are still reported).'
complete -c igcli -n '__igcli_in igcli attribute' -l 'json' -d 'Print a machine-readable summary on stdout.'
complete -c igcli -n '__igcli_in igcli attribute' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 -1 igcli attribute' -F  # INPUTS

# igcli calibrate
complete -c igcli -n '__igcli_in igcli calibrate' -s 'm' -l 'model' -r -F -d 'torchvision name (resnet50, inception_v3, ...), efficientnet_lite0, a TorchScript or saved-module file, or module:factory / file.py:factory.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'weights' -r -F -d 'State-dict file to load instead of downloading (works offline).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'trust-model-file' -d 'Allow --model FILE to be a whole pickled module. Unpickling runs any code its author put in the file: use only for files you made or trust. TorchScript files and --weights state dicts never need it.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'resize' -x -d 'Resize the short side to this many pixels (default: from the weights, else 256).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'crop' -x -d 'Centre-crop size in pixels (default: from the weights, else 224).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'mean' -r -F -d 'Per-channel normalisation mean, e.g. 0.485,0.456,0.406 (default: from the weights, else ImageNet\'s).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'std' -r -F -d 'Per-channel normalisation std, e.g. 0.229,0.224,0.225 (default: from the weights, else ImageNet\'s).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'interpolation' -x -a 'nearest bilinear bicubic' -d 'Resize interpolation (default: from the weights, else bilinear).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'method' -x -a 'ig blurig gig' -d 'The path method to calibrate.'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'n' -l 'steps' -x -d 'Sample points of the schedule.'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'k' -l 'probe-steps' -x -d 'Equispaced points where the integrand is evaluated to estimate |g\'|.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'images' -x -d 'Calibration images: a random sample (--seed) of the inputs.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'statistic' -x -a 'mean median' -d 'Reduce |g\'| over features by the mean (the paper\'s) or the median.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'baseline' -r -F -d 'black, white, blur, uniform, or a file (image, .npy/.pt tensor in model-input space) for ig/gig.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'max-sigma' -x -d 'Blur IG: blur sigma at the path start, pixels [50].'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'fraction' -x -d 'Guided IG: fraction of features moved per step [0.25].'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'max-dist' -x -d 'Guided IG: largest L1 distance from the straight path, relative [0.02].'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'anchors' -x -d 'Guided IG: anchor points on the straight path (0 = none) [0].'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'target' -r -F -d 'Class to explain: pred, label (from --labels, a WordNet ID starting the file name, or the parent folder), a class INDEX, or topK.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'labels' -r -F -d 'Labels for --target label: a CSV of path,label, or one label per line for ImageNet validation images (line N labels ..._val_N).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'output' -x -a 'prob logit' -d 'The score explained: the target\'s softmax probability (prob) or its logit.'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'seed' -x -d 'Seed of the image sample and random baselines.'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'b' -l 'batch-size' -x -d 'Rows per forward/backward pass, and images per loader batch (default 32 on GPU, 4 on CPU).'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'j' -l 'workers' -x -d 'Image-decoding processes (default: half the cores; 0 decodes in the main process).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'device' -r -F -d 'cuda, cuda:1, cpu, ... (default: CUDA when available).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'amp' -d 'Run the model under autocast (float16 on GPU, bfloat16 on CPU).'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'o' -l 'out' -r -F -d 'Schedule file to write [default: the user cache, $IGCLI_CACHE or ~/.cache/igcli/schedules, where --schedule auto finds it].'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'plot' -r -F -d 'Also draw |g\'(alpha)| with the chosen and uniform points to this PNG.'
complete -c igcli -n '__igcli_in igcli calibrate' -s '0' -l 'null' -d 'With -: paths on stdin are separated by NUL bytes (find -print0), for names that contain newlines.'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'q' -l 'quiet' -d 'No progress output (skipped inputs and errors are still reported).'
complete -c igcli -n '__igcli_in igcli calibrate' -l 'json' -d 'Print a machine-readable summary on stdout.'
complete -c igcli -n '__igcli_in igcli calibrate' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 -1 igcli calibrate' -F  # INPUTS

# igcli completions
complete -c igcli -n '__igcli_in igcli completions' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 0 igcli completions' -a 'bash zsh fish' -d 'The shell to complete in.'  # SHELL

# igcli evaluate
complete -c igcli -n '__igcli_in igcli evaluate' -l 'metric' -r -F -d 'Comma-separated: insertion, deletion, abpc, sic, aic, sic-msssim, aic-msssim, sensitivity, jpeg-stability, closed-path, localization, completeness.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'rank' -r -F -d 'Pixel ranking: signed (most positive first), abs or positive.'
complete -c igcli -n '__igcli_in igcli evaluate' -s 'm' -l 'model' -r -F -d 'Model to score with [default: the one named in the shards].'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'weights' -r -F -d 'State-dict file to load instead of downloading (works offline).'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'trust-model-file' -d 'Allow --model FILE to be a whole pickled module. Unpickling runs any code its author put in the file: use only for files you made or trust. TorchScript files and --weights state dicts never need it.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'masks' -r -F -d 'Folder of ground-truth PNG masks (nonzero = object) named like the inputs, for localization.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'boxes' -r -F -d 'Bounding boxes for localization: a CSV of path,xmin,ymin,xmax,ymax or a folder of Pascal VOC XML files.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'limit' -x -d 'Evaluate only the first N rows.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'root' -r -F -d 'The input images moved: the folder that now holds what the folder given to igcli attribute held; images are looked up by their path below it.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'seed' -x -d 'Seed of SIC/AIC\'s random 1% of revealed pixels (per image from seed and path).'
complete -c igcli -n '__igcli_in igcli evaluate' -s 'b' -l 'batch-size' -x -d 'Rows per forward/backward pass, and images per loader batch (default 32 on GPU, 4 on CPU).'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'device' -r -F -d 'cuda, cuda:1, cpu, ... (default: CUDA when available).'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'csv' -r -F -d 'Also write per-image values to this CSV.'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'plot' -r -F -d 'Draw the aggregate curves (insertion, deletion, SIC/AIC) of every output to this PNG.'
complete -c igcli -n '__igcli_in igcli evaluate' -s 'q' -l 'quiet' -d 'No progress output (skipped inputs and errors are still reported).'
complete -c igcli -n '__igcli_in igcli evaluate' -l 'json' -d 'Print a machine-readable summary on stdout.'
complete -c igcli -n '__igcli_in igcli evaluate' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 -1 igcli evaluate' -F  # SOURCES

# igcli index
complete -c igcli -n '__igcli_in igcli index' -s 'q' -l 'quiet' -d 'No summary line on stderr.'
complete -c igcli -n '__igcli_in igcli index' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 0 igcli index' -F  # OUT

# igcli render
complete -c igcli -n '__igcli_in igcli render' -s 'o' -l 'out' -r -F -d 'Folder for the PNG files.'
complete -c igcli -n '__igcli_in igcli render' -l 'percentile' -x -d '|attribution| at this percentile gets full colour; larger values are clipped.'
complete -c igcli -n '__igcli_in igcli render' -l 'limit' -x -d 'Draw only the first N rows.'
complete -c igcli -n '__igcli_in igcli render' -l 'root' -r -F -d 'The input images moved: the folder that now holds what the folder given to igcli attribute held; images are looked up by their path below it.'
complete -c igcli -n '__igcli_in igcli render' -s 'q' -l 'quiet' -d 'No summary line on stderr.'
complete -c igcli -n '__igcli_in igcli render' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 0 igcli render' -F  # SOURCE

# igcli split
complete -c igcli -n '__igcli_in igcli split' -s 'o' -l 'out' -r -F -d 'Output folder for the HDF5 shards.'
complete -c igcli -n '__igcli_in igcli split' -l 'psi' -r -F -d 'Saturation threshold(s) in (0, 1), comma-separated.'
complete -c igcli -n '__igcli_in igcli split' -l 'tolerance' -x -d 'Refine alpha* by bisection (forward passes only) to this width in alpha.'
complete -c igcli -n '__igcli_in igcli split' -s 'm' -l 'model' -r -F -d 'torchvision name (resnet50, inception_v3, ...), efficientnet_lite0, a TorchScript or saved-module file, or module:factory / file.py:factory.'
complete -c igcli -n '__igcli_in igcli split' -l 'weights' -r -F -d 'State-dict file to load instead of downloading (works offline).'
complete -c igcli -n '__igcli_in igcli split' -l 'trust-model-file' -d 'Allow --model FILE to be a whole pickled module. Unpickling runs any code its author put in the file: use only for files you made or trust. TorchScript files and --weights state dicts never need it.'
complete -c igcli -n '__igcli_in igcli split' -l 'resize' -x -d 'Resize the short side to this many pixels (default: from the weights, else 256).'
complete -c igcli -n '__igcli_in igcli split' -l 'crop' -x -d 'Centre-crop size in pixels (default: from the weights, else 224).'
complete -c igcli -n '__igcli_in igcli split' -l 'mean' -r -F -d 'Per-channel normalisation mean, e.g. 0.485,0.456,0.406 (default: from the weights, else ImageNet\'s).'
complete -c igcli -n '__igcli_in igcli split' -l 'std' -r -F -d 'Per-channel normalisation std, e.g. 0.229,0.224,0.225 (default: from the weights, else ImageNet\'s).'
complete -c igcli -n '__igcli_in igcli split' -l 'interpolation' -x -a 'nearest bilinear bicubic' -d 'Resize interpolation (default: from the weights, else bilinear).'
complete -c igcli -n '__igcli_in igcli split' -l 'rule' -x -a 'riemann idgi' -d 'How gradients become attributions: riemann or idgi (IDGI, any path method).'
complete -c igcli -n '__igcli_in igcli split' -l 'steps' -x -d 'Gradient evaluations along the path [default: 32, or the step count of a schedule file].'
complete -c igcli -n '__igcli_in igcli split' -l 'schedule' -r -F -d 'left, right, midpoint, trapezoid, gauss-legendre, comma-separated alphas from 0 to 1, a calibrated schedule FILE.json, or auto (the one igcli calibrate cached for this model, method and steps).'
complete -c igcli -n '__igcli_in igcli split' -l 'baseline' -r -F -d 'black, white, blur, uniform, or a file (image, .npy/.pt tensor in model-input space) for ig/gig.'
complete -c igcli -n '__igcli_in igcli split' -l 'target' -r -F -d 'Class to explain: pred, label (from --labels, a WordNet ID starting the file name, or the parent folder), a class INDEX, or topK.'
complete -c igcli -n '__igcli_in igcli split' -l 'labels' -r -F -d 'Labels for --target label: a CSV of path,label, or one label per line for ImageNet validation images (line N labels ..._val_N).'
complete -c igcli -n '__igcli_in igcli split' -l 'output' -x -a 'prob logit' -d 'The score explained: logit (the paper\'s choice) or prob.'
complete -c igcli -n '__igcli_in igcli split' -l 'seed' -x -d 'Seed for random baselines.'
complete -c igcli -n '__igcli_in igcli split' -s 'b' -l 'batch-size' -x -d 'Rows per forward/backward pass, and images per loader batch (default 32 on GPU, 4 on CPU).'
complete -c igcli -n '__igcli_in igcli split' -s 'j' -l 'workers' -x -d 'Image-decoding processes (default: half the cores; 0 decodes in the main process).'
complete -c igcli -n '__igcli_in igcli split' -l 'device' -r -F -d 'cuda, cuda:1, cpu, ... (default: CUDA when available).'
complete -c igcli -n '__igcli_in igcli split' -l 'amp' -d 'Run the model under autocast (float16 on GPU, bfloat16 on CPU).'
complete -c igcli -n '__igcli_in igcli split' -l 'dtype' -x -a 'float32 float16' -d 'Storage type of the maps (float16 halves the files; warns when values fall outside its range).'
complete -c igcli -n '__igcli_in igcli split' -l 'reduce' -x -a 'none sum abs-sum' -d 'Store (N, C, H, W) maps (none) or (N, H, W): channel sum or sum of |values|.'
complete -c igcli -n '__igcli_in igcli split' -l 'shard-size' -x -d 'Rows per output shard (the unit of --resume).'
complete -c igcli -n '__igcli_in igcli split' -l 'resume' -d 'Continue a run in OUT: skip inputs already in complete shards.'
complete -c igcli -n '__igcli_in igcli split' -l 'overwrite' -d 'Replace igcli\'s files in OUT (this part\'s only, with --shard).'
complete -c igcli -n '__igcli_in igcli split' -l 'shard' -r -F -d 'Take part i of n of the inputs, e.g. 0/4 (default: from SLURM_ARRAY_TASK_ID/COUNT).'
complete -c igcli -n '__igcli_in igcli split' -l 'plot' -r -F -d 'Folder for per-image Figure 1 plots (f(alpha) with alpha*, ||grad f||, Left/Right/Full maps) and aggregate.png.'
complete -c igcli -n '__igcli_in igcli split' -s '0' -l 'null' -d 'With -: paths on stdin are separated by NUL bytes (find -print0), for names that contain newlines.'
complete -c igcli -n '__igcli_in igcli split' -s 'q' -l 'quiet' -d 'No progress output (skipped inputs and errors are still reported).'
complete -c igcli -n '__igcli_in igcli split' -l 'json' -d 'Print a machine-readable summary on stdout.'
complete -c igcli -n '__igcli_in igcli split' -s 'h' -l 'help' -d 'Show this message and exit.'
complete -c igcli -n '__igcli_argument 0 -1 igcli split' -F  # INPUTS
