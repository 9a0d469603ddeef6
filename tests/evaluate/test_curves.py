import pytest

from dmr.evaluate.curves import curve, random_scores


def test_perfect_router_on_a_tiny_set():
    # strong wins on prompts 0 and 1 only; a router that scores them highest reaches full
    # quality after sending 2 of 4 prompts to the strong model.
    strong, weak = [1, 1, 1, 0], [0, 0, 1, 0]
    c = curve([0.9, 0.8, 0.1, 0.2], strong, weak, cost_strong=10, cost_weak=1)
    assert c.weak == 0.25 and c.strong == 0.75
    assert c.shares == (0, 0.25, 0.5, 0.75, 1.0)
    assert c.cpt(0.5) == pytest.approx(0.25)
    assert c.cpt(1.0) == pytest.approx(0.5)
    # PGR: 0, .5, 1, 1, 1 at the cuts → area .0625 + .1875 + .25 + .25 = 0.75
    assert c.apgr == pytest.approx(0.75)
    # 95% of 0.75 = 0.7125 is first reached between f=.25 (0.5) and f=.5 (0.75): f = .25 + .25*.85
    f = 0.25 + 0.25 * (0.7125 - 0.5) / 0.25
    assert c.cost_saved_at(0.95) == pytest.approx(1 - (f * 10 + (1 - f) * 1) / 10)


def test_ties_move_together_and_interpolate():
    c = curve([1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0])
    assert c.shares == (0, 1.0)
    assert c.apgr == pytest.approx(0.5)
    assert c.cpt(0.5) == pytest.approx(0.5)


def test_a_random_draw_is_about_half():
    n = 4000
    strong = [1 if i % 3 else 0 for i in range(n)]
    weak = [1 if i % 5 == 0 else 0 for i in range(n)]
    assert abs(curve(random_scores(n, seed=3), strong, weak).apgr - 0.5) < 0.03


def test_the_expected_random_router_is_the_straight_line_between_the_two_models():
    # 10 prompts, strong right on 8, weak on 5; 95 % of strong is 0.76, reached at a strong share
    # of (0.76 - 0.5) / (0.8 - 0.5) = 13/15, where the cost is 13/15 * 10 + 2/15 * 1 = 8.8 of 10.
    strong = [1] * 8 + [0] * 2
    weak = [1, 0] * 5
    c = curve(random_scores(10), strong, weak, cost_strong=10, cost_weak=1)
    assert c.shares == (0.0, 1.0)
    assert c.apgr == pytest.approx(0.5)
    assert c.cpt(0.5) == pytest.approx(0.5)
    assert c.cost_saved_at(0.95) == pytest.approx(1 - 8.8 / 10)


def test_weak_already_good_enough_saves_everything():
    c = curve([0.1, 0.2], [1, 1], [1, 1], cost_strong=4, cost_weak=1)
    assert c.cost_saved_at(0.95) == pytest.approx(0.75)


def test_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        curve([1, 2], [1], [0])
