"""Display names of the domain's codes, as message ids for the translation layer (English ids, zh-CN catalog).

Templates call ``label(kind, code)`` and translate the result; an unknown code is shown as it is.
"""

from __future__ import annotations

from api.web.i18n import N_

CASE_STATUS = {
    "awaiting_verification": N_("Awaiting verification"),
    "awaiting_dispute_review": N_("Dispute under review"),
    "rectifying": N_("Rectifying"),
    "awaiting_review": N_("Awaiting review"),
    "closed": N_("Closed"),
}

CASE_OUTCOME = {
    "rectified": N_("Rectified"),
    "false_alarm": N_("False alarm"),
    "transferred": N_("Transferred to the brigade"),
    "no_penalty": N_("No penalty"),
    "penalised": N_("Penalised"),
}

ALERT_TYPE = {
    "no_hat": N_("No work cap"),
    "no_uniform": N_("No work clothes"),
    "no_mask": N_("No mask"),
    "trash_can_open": N_("Bin left open"),
    "smoking": N_("Smoking"),
    "phone_use": N_("Using a phone"),
    "pest": N_("Pest sighted"),
    "licence_expiring": N_("Licence expiring"),
    "licence_expired": N_("Licence expired"),
    "health_cert_expired": N_("Health certificate expired"),
    "camera_offline": N_("Camera offline"),
    "camera_covered": N_("Camera covered"),
    "camera_moved": N_("Camera angle changed"),
    "camera_blurred": N_("Blurred picture"),
}

HANDOFF_STATUS = {
    "awaiting_acceptance": N_("Awaiting acceptance"),
    "accepted": N_("Accepted"),
    "case_opened": N_("Case opened"),
    "closed": N_("Concluded"),
}

DECISION_KIND = {
    "case_opened": N_("Open a case (立案)"),
    "not_opened": N_("Do not open a case (不予立案)"),
    "penalty_decision": N_("Penalty decision (处罚决定)"),
}

# 不属实 reason codes a merchant picks from (办法 第十六条 asks for a reason); the text explains.
DISPUTE_REASONS = {
    "misdetection": N_("Misdetection: the picture does not show this problem"),
    "not_staff": N_("Not our staff (a customer, inspector or visitor)"),
    "not_food_area": N_("Not a food-handling area or not during business"),
    "already_compliant": N_("Already compliant at the time (e.g. cap worn, bin closed)"),
    "other": N_("Other reason (explain below)"),
}

DEADLINE_NAME = {
    "verification": N_("Verification (24 clock hours)"),
    "rectification": N_("Rectification"),
    "review": N_("Records and review (3 working days)"),
    "dispute_review": N_("Dispute review"),
    "acceptance": N_("Acceptance by the brigade (3 working days)"),
}

KINDS: dict[str, dict[str, str]] = {
    "status": CASE_STATUS,
    "outcome": CASE_OUTCOME,
    "alert_type": ALERT_TYPE,
    "handoff_status": HANDOFF_STATUS,
    "decision": DECISION_KIND,
    "dispute_reason": DISPUTE_REASONS,
    "deadline": DEADLINE_NAME,
}


def label(kind: str, code: str | None) -> str:
    if code is None:
        return "—"
    return KINDS.get(kind, {}).get(code, code)
