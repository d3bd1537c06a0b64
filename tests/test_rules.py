import pytest
import torch

from igcli.rules import IdgiRule, RiemannRule, make_rule


def test_riemann_adds_gradient_times_displacement_per_image():
    rule = RiemannRule(torch.Size((2, 1, 1, 3)), torch.device("cpu"))
    g = torch.tensor([[[[1.0, 2.0, 3.0]]], [[[4.0, 5.0, 6.0]]], [[[1.0, 1.0, 1.0]]]])
    dx = torch.tensor([[[[0.5, 0.5, 0.5]]], [[[1.0, 0.0, -1.0]]], [[[2.0, 2.0, 2.0]]]])
    rule.add(torch.tensor([0, 1, 0]), g, dx)
    assert rule.attributions[0].flatten().tolist() == [2.5, 3.0, 3.5]
    assert rule.attributions[1].flatten().tolist() == [4.0, 0.0, -6.0]


def test_idgi_step_is_the_papers_formula():
    # Yang et al. 2023 Algorithm 1, line 5: I += g * g * d / (g . g)
    rule = IdgiRule(torch.Size((1, 1, 1, 3)), torch.device("cpu"))
    g = torch.tensor([[[[1.0, -2.0, 2.0]]]])
    rule.add(torch.tensor([0]), g, None, torch.tensor([0.9]))
    expected = [1 * 0.9 / 9, 4 * 0.9 / 9, 4 * 0.9 / 9]
    assert torch.allclose(rule.attributions.flatten(), torch.tensor(expected, dtype=torch.float64))
    assert float(rule.attributions.sum()) == pytest.approx(float(torch.tensor(0.9)), abs=1e-15)


def test_idgi_cell_with_zero_gradient_adds_nothing():
    rule = make_rule("idgi", torch.Size((1, 1, 2, 2)), torch.device("cpu"))
    rule.add(torch.tensor([0]), torch.zeros(1, 1, 2, 2), None, torch.tensor([0.3]))
    assert torch.count_nonzero(rule.attributions) == 0
