"""Synthetic trading histories: a landing zone (docs/design.md §3) plus its ground truth.

    from synthetic import generate_landing_zone
    summary = generate_landing_zone(Path("var/landing"), n_suppliers=5000)

See `landing_zone.py` (layout, seeding), `world.py` (suppliers and their latent
reliability), `behaviour.py` (how the latent state shows in behaviour), `events.py`
(orders, disputes, reviews, inquiries per month) and `truth.py` (the exact six-month
breach probability).
"""

from synthetic.landing_zone import GenerationSummary, generate_landing_zone

__all__ = ["GenerationSummary", "generate_landing_zone"]
