"""The Trade Assurance limit policy: eligibility, risk grade and Trade Assurance Amount.

Risk and amount are separate decisions (docs/design.md §7): a versioned YAML configuration
(``models/policies/*.yaml``) turns the model's risk outputs and the supplier's trading
capacity into a decision. Two formulas, chosen by the YAML's ``formula`` key:

* ``v2`` (``default.yaml``): loss rate and default probability; the amount grows with
  capacity and size is never a risk. See ``models/policy/v2.py``.
* ``v1`` (``v1.yaml``; files without the key): six-month breach probability. Kept for
  comparison, results unchanged. See ``models/policy/v1.py``.

``config.py`` parses and versions a configuration; ``common.py`` holds what both
formulas share; ``decide.py`` the entry points ``apply_policy``/``decide_supplier``.
"""

from models.policy.common import (
    AMOUNT_DRIVERS,
    DECISION_COLUMNS,
    INELIGIBLE_REASONS,
    MAX_INPUT_VALUE,
    NOT_OPTED_IN,
    OPTIONAL_COLUMNS,
    UNKNOWN_TIER,
    UNRATED_GRADE,
    round_down_to_steps,
    true_flags,
)
from models.policy.config import (
    DEFAULT_POLICY_PATH,
    FORMULA_V1,
    FORMULA_V2,
    FORMULAS,
    POLICIES_DIR,
    V1_POLICY_PATH,
    Caps,
    CapacityRules,
    EligibilityRules,
    EligibilityRulesV2,
    ExpectedLossRules,
    GrowthLimit,
    PerformanceBoost,
    Policy,
    PolicyConfigError,
    RiskGradeBand,
    RiskGradeBandV2,
    RoundingStep,
)
from models.policy.decide import PolicyDecision, apply_policy, decide_supplier
from models.policy.v1 import REQUIRED_COLUMNS, assign_risk_grades
from models.policy.v2 import REQUIRED_COLUMNS as REQUIRED_COLUMNS_V2
from models.policy.v2 import assign_risk_grades_v2

__all__ = [
    "AMOUNT_DRIVERS", "DECISION_COLUMNS", "DEFAULT_POLICY_PATH", "FORMULAS", "FORMULA_V1",
    "FORMULA_V2", "INELIGIBLE_REASONS", "MAX_INPUT_VALUE", "NOT_OPTED_IN", "OPTIONAL_COLUMNS",
    "POLICIES_DIR", "REQUIRED_COLUMNS", "REQUIRED_COLUMNS_V2", "UNKNOWN_TIER", "UNRATED_GRADE",
    "V1_POLICY_PATH", "CapacityRules", "Caps", "EligibilityRules", "EligibilityRulesV2",
    "ExpectedLossRules", "GrowthLimit", "PerformanceBoost", "Policy", "PolicyConfigError",
    "PolicyDecision", "RiskGradeBand", "RiskGradeBandV2", "RoundingStep", "apply_policy",
    "assign_risk_grades", "assign_risk_grades_v2", "decide_supplier", "round_down_to_steps",
    "true_flags",
]
