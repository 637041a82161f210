"""Disposition advice (办法 第十九、二十条): every row of the recommendation table in domain.md §4.4, and more."""

from __future__ import annotations

import itertools
import json
from dataclasses import fields, replace
from typing import Any

import pytest

from domain.alerts.taxonomy import AlertType, alert_type_info
from domain.disposition import (
    ADVICE_LABEL,
    APL_33_1,
    APL_33_3,
    APL_51,
    FACT_LABELS,
    FSL_114,
    FSL_122,
    FSL_126_12,
    FSL_133,
    FSL_134,
    HEXI_12_2,
    HEXI_19_3,
    REG_67_1_5,
    RULES,
    SAMR_FIRST_OFFENCE_LIST,
    DispositionAdvice,
    DispositionFacts,
    Harm,
    Recommendation,
    advise,
)

# Every fact known and benign: a first, harmless, promptly rectified violation by a merchant with a clean record.
CLEAN: dict[str, Any] = {
    "prior_same_type_24m": 0,
    "prior_penalties_12m": 0,
    "prior_same_type_penalties_12m": 0,
    "rectified": True,
    "rectified_within_deadline": True,
    "harm": "none",
    "refused_inspection": False,
    "deliberate_tampering": False,
    "special_population": False,
}


def clean(alert_type: str, **changes: Any) -> DispositionFacts:
    return DispositionFacts(alert_type=alert_type, **{**CLEAN, **changes})


# (id, facts, recommendation, table row, rule, a citation that must be among the articles)
TABLE = [
    # Row 1: 轻微 + 没有危害后果 + 及时改正 → 不予处罚 (行政处罚法 33① first sentence, mandatory).
    ("row1-no-hat", clean("no_hat"), Recommendation.no_penalty, 1, "minor_no_harm", APL_33_1),
    ("row1-phone", clean("phone_use"), Recommendation.no_penalty, 1, "minor_no_harm", APL_33_3),
    # Row 2: 初次 + 危害后果轻微 + 及时改正 → 首违不罚 (33① second sentence, discretionary).
    ("row2-mask-minor-harm", clean("no_mask", harm="minor"), Recommendation.first_offence_no_penalty, 2,
     "first_offence", APL_33_1),
    ("row2-pest", clean("pest"), Recommendation.first_offence_no_penalty, 2, "first_offence", APL_33_1),
    ("row2-health-cert-list", clean("health_cert_expired", harm="minor"), Recommendation.first_offence_no_penalty,
     2, "first_offence", SAMR_FIRST_OFFENCE_LIST),
    # Row 3: 126, not rectified by the deadline → 罚款 5,000–50,000; 32 factors → 从轻.
    ("row3-deadline-missed", clean("no_hat", rectified=False, rectified_within_deadline=False, deadline_missed=True),
     Recommendation.penalty, 3, "not_rectified_in_time", HEXI_19_3),
    ("row3-late", clean("pest", rectified_within_deadline=False), Recommendation.penalty, 3, "not_rectified_in_time",
     HEXI_19_3),
    ("row3-harm-remedied", clean("smoking", harm="actual"), Recommendation.lighter, 3, "lighter_harm_remedied",
     "《中华人民共和国行政处罚法》第三十二条第一项"),
    ("row3-not-first", clean("no_hat", prior_same_type_24m=1), Recommendation.penalty, 3, "not_first_offence",
     APL_51),
    # Row 4: 实施条例 67 情节严重 (same kind of violation within a year of a penalty) → 从重.
    ("row4-repeat-after-penalty", clean("no_hat", prior_same_type_24m=1, prior_penalties_12m=1,
                                        prior_same_type_penalties_12m=1),
     Recommendation.heavier, 4, "serious_repeat", REG_67_1_5),
    # Row 5: two penalties already within 12 months → 第一百三十四条.
    ("row5-third-penalty", clean("trash_can_open", prior_penalties_12m=2), Recommendation.heavier, 5,
     "three_penalties", FSL_134),
    # Row 6: lapsed licence: < 1 month + list conditions → 首违不罚; else the 50,000 floor.
    ("row6-short-lapse", clean("licence_expired", lapse_days=10), Recommendation.first_offence_no_penalty, 6,
     "licence_first_offence", SAMR_FIRST_OFFENCE_LIST),
    ("row6-long-lapse", clean("licence_expired", lapse_days=45), Recommendation.penalty, 6, "licence_floor",
     FSL_122),
    # Row 7: refused inspection or deliberate tampering → 133 review (移交) and 约谈 (114).
    ("row7-refused", clean("no_hat", refused_inspection=True), Recommendation.transfer, 7, "obstruction", FSL_133),
    ("row7-tampering", clean("camera_covered", deliberate_tampering=True), Recommendation.transfer, 7,
     "camera_tampering", HEXI_12_2),
    # Row 8: a warning only → may be decided on the spot (行政处罚法 51).
    ("row8-warning-on-the-spot", clean("no_hat", prior_same_type_24m=1, repeat_after_rectification=True),
     Recommendation.penalty, 3, "repeat_after_rectification", APL_51),
]  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "recommendation", "row", "rule", "article"),
    [case[1:] for case in TABLE],
    ids=[case[0] for case in TABLE],
)
def test_recommendation_table(
    facts: DispositionFacts, recommendation: Recommendation, row: int, rule: str, article: str
) -> None:
    advice = advise(facts)
    assert (advice.recommendation, advice.table_row, advice.rule) == (recommendation, row, rule)
    assert article in advice.articles
    assert advice.articles[0] == facts.legal_basis  # the violation's own basis comes first
    assert advice.conditions and advice.explanation and advice.sanction
    # Every fact was known; only the licence list's two presumed conditions are left for the officer to confirm.
    assert set(advice.missing_facts) <= {"meets_licence_conditions", "incident_during_validity"}
    assert advice.label == ADVICE_LABEL


def test_every_row_of_the_table_is_covered() -> None:
    assert {case[3] for case in TABLE} == {1, 2, 3, 4, 5, 6, 7}  # row 8 is a flag on a row-3 penalty
    assert any(advise(case[1]).summary_procedure_possible for case in TABLE)
    table_rules = {case[4] for case in TABLE}
    assert table_rules >= {key for key, (row, _) in RULES.items() if row is not None}


def test_row1_requires_no_harm_and_a_trivial_lapse() -> None:
    assert advise(clean("no_hat", harm="minor")).recommendation is Recommendation.first_offence_no_penalty
    # Pests are never "trivial": the same facts give 首违不罚 (discretionary), not the mandatory 不予处罚.
    assert advise(clean("pest")).rule == "first_offence"


def test_row3_fine_range_and_ladder() -> None:
    late = advise(clean("no_hat", rectified=False, rectified_within_deadline=False, deadline_missed=True))
    assert late.fine_range == "5,000–50,000 元"
    assert "五千元以上五万元以下罚款" in late.sanction
    assert not late.summary_procedure_possible


def test_row8_warning_only_can_be_decided_on_the_spot() -> None:
    advice = advise(clean("no_hat", prior_same_type_24m=1))
    assert advice.sanction == "责令改正，给予警告"
    assert advice.summary_procedure_possible and APL_51 in advice.articles
    assert advice.fine_range is None


def test_repeat_after_rectification_is_penalised() -> None:
    advice = advise(clean("smoking", prior_same_type_24m=1, repeat_after_rectification=True))
    assert advice.recommendation is Recommendation.penalty
    assert "整改后重复再犯" in advice.conditions
    assert HEXI_19_3 in advice.articles
    # Even when the previous count is unknown, the repeat alone rules out leniency.
    unknown_count = advise(replace(clean("smoking", repeat_after_rectification=True), prior_same_type_24m=None))
    assert unknown_count.recommendation is Recommendation.penalty
    assert "prior_same_type_24m" not in unknown_count.missing_facts


def test_repeat_after_rectification_not_fixed_again_gets_the_fine() -> None:
    advice = advise(clean("smoking", prior_same_type_24m=1, repeat_after_rectification=True, rectified=False,
                          rectified_within_deadline=False, deadline_missed=True))  # fmt: skip
    assert advice.recommendation is Recommendation.penalty
    assert advice.fine_range == "5,000–50,000 元"


def test_deadline_missed_is_penalised_whatever_else_is_known() -> None:
    advice = advise(DispositionFacts(alert_type="no_uniform", deadline_missed=True, prior_penalties_12m=0,
                                     prior_same_type_penalties_12m=0, refused_inspection=False,
                                     deliberate_tampering=False))  # fmt: skip
    assert advice.recommendation is Recommendation.penalty
    assert advice.rule == "not_rectified_in_time"
    assert "承诺改正但未在限期内整改到位" in advice.conditions
    # Harm and history cannot make a missed deadline lenient, so they are not asked for.
    assert advice.missing_facts == []


def test_three_penalties_flag_and_suspension_text() -> None:
    advice = advise(clean("no_hat", prior_penalties_12m=2))
    assert advice.three_penalties_flag
    assert advice.recommendation is Recommendation.heavier
    assert "责令停产停业" in advice.sanction
    assert FSL_134 in advice.articles
    assert not advise(clean("no_hat", prior_penalties_12m=1)).three_penalties_flag


def test_three_penalties_flag_is_raised_even_when_another_rule_decides() -> None:
    advice = advise(clean("licence_expired", lapse_days=40, prior_penalties_12m=3, refused_inspection=True))
    assert advice.recommendation is Recommendation.transfer
    assert advice.three_penalties_flag and advice.licence_floor_warning
    assert FSL_134 in advice.articles


def test_short_licence_lapse_first_offence_lists_the_122_conditions() -> None:
    advice = advise(clean("licence_expired", lapse_days=29))
    assert advice.recommendation is Recommendation.first_offence_no_penalty
    assert not advice.licence_floor_warning
    assert FSL_122 in advice.articles and SAMR_FIRST_OFFENCE_LIST in advice.articles
    for condition in ("许可证逾期不足1个月（29天）", "初次违法：24个月内无同类违法", "在期限内整改到位（及时改正）",
                      "仍符合许可条件（待核实）", "许可证有效期内未发生食品安全事故（待核实）"):  # fmt: skip
        assert condition in advice.conditions
    # The two list conditions the platform does not hold are presumed, and the officer is asked to confirm them.
    assert advice.missing_facts == ["meets_licence_conditions", "incident_during_validity"]
    confirmed = advise(clean("licence_expired", lapse_days=29, meets_licence_conditions=True,
                             incident_during_validity=False))  # fmt: skip
    assert confirmed.missing_facts == []
    assert "仍符合许可条件" in confirmed.conditions


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lapse_days": 30}, "许可证逾期已满1个月（30天），不适用首违不罚清单"),
        ({"lapse_days": 5, "prior_same_type_24m": 1}, "非初次违法：24个月内已有1次同类违法"),
        ({"lapse_days": 5, "meets_licence_conditions": False}, "已不符合许可条件"),
        ({"lapse_days": 5, "incident_during_validity": True}, "许可证有效期内发生过食品安全事故"),
        (
            {"lapse_days": 5, "rectified": False, "rectified_within_deadline": None, "deadline_missed": True},
            "承诺改正但未在限期内整改到位",
        ),
    ],
)
def test_lapsed_licence_outside_the_list_gets_the_floor_warning(changes: dict[str, Any], reason: str) -> None:
    advice = advise(clean("licence_expired", **changes))
    assert advice.recommendation is Recommendation.penalty
    assert advice.licence_floor_warning
    assert reason in advice.conditions
    assert advice.fine_range is not None and advice.fine_range.startswith("50,000–100,000 元")
    assert any("下限为五万元" in condition for condition in advice.conditions)


def test_unknown_lapse_is_a_missing_fact_and_keeps_the_floor_warning() -> None:
    advice = advise(clean("licence_expired"))
    assert advice.licence_floor_warning
    assert advice.missing_facts == ["lapse_days", "meets_licence_conditions", "incident_during_validity"]


def test_refused_inspection_suggests_interview_and_133_review() -> None:
    advice = advise(clean("pest", refused_inspection=True))
    assert advice.interview_suggested
    assert {FSL_133, FSL_114} <= set(advice.articles)
    assert advice.fine_range == "2,000–50,000 元"
    assert not advise(clean("pest")).interview_suggested


def test_all_unknown_facts_are_listed_as_missing() -> None:
    advice = advise(DispositionFacts(alert_type=AlertType.no_hat))
    assert advice.recommendation is Recommendation.penalty  # leniency is never presumed
    assert advice.rule == "facts_incomplete"
    assert advice.missing_facts == [
        "prior_same_type_24m",
        "prior_penalties_12m",
        "prior_same_type_penalties_12m",
        "rectified_within_deadline",
        "harm",
        "refused_inspection",
        "deliberate_tampering",
    ]
    assert set(advice.missing_facts) <= set(FACT_LABELS)


def test_one_unknown_fact_is_listed_and_filling_it_changes_the_advice() -> None:
    advice = advise(replace(clean("no_hat"), harm=None))
    assert advice.missing_facts == ["harm"]
    assert advice.recommendation is Recommendation.penalty
    assert advise(replace(clean("no_hat"), harm=Harm.none)).recommendation is Recommendation.no_penalty


# Values to try for each fact when checking what "missing" means.
TRIAL_VALUES: dict[str, tuple[Any, ...]] = {
    "prior_same_type_24m": (0, 1),
    "prior_penalties_12m": (0, 1, 2),
    "prior_same_type_penalties_12m": (0, 1),
    "rectified": (True, False),
    "rectified_within_deadline": (True, False),
    "harm": ("none", "minor", "actual"),
    "lapse_days": (5, 40),
    "meets_licence_conditions": (True, False),
    "incident_during_validity": (True, False),
    "refused_inspection": (True, False),
    "deliberate_tampering": (True, False),
    "special_population": (True, False),
}


def _result(facts: DispositionFacts) -> tuple[Any, ...]:
    advice = advise(facts)
    return (advice.rule, advice.recommendation, advice.three_penalties_flag, advice.licence_floor_warning,
            advice.interview_suggested)  # fmt: skip


@pytest.mark.parametrize(
    "facts",
    [
        DispositionFacts(alert_type="no_hat", prior_penalties_12m=0),
        DispositionFacts(alert_type="pest", rectified=True, rectified_within_deadline=True, harm="minor"),
        DispositionFacts(alert_type="licence_expired", prior_same_type_24m=0, rectified_within_deadline=True),
        DispositionFacts(alert_type="health_cert_expired", deadline_missed=True, special_population=True, lapse_days=3),
        DispositionFacts(alert_type="camera_moved", prior_same_type_24m=2, prior_penalties_12m=3, rectified=False),
    ],
    ids=["hat", "pest", "licence", "health-cert", "camera"],
)
def test_missing_facts_are_exactly_those_that_could_change_the_result(facts: DispositionFacts) -> None:
    advice = advise(facts)
    unknown = [item.name for item in fields(DispositionFacts) if item.name in TRIAL_VALUES
               and getattr(facts, item.name) is None]  # fmt: skip
    presumed = {"meets_licence_conditions", "incident_during_validity"} & set(advice.missing_facts)
    for name in unknown:
        others = [other for other in unknown if other != name]
        matters = False
        for completion in itertools.product(*(TRIAL_VALUES[other] for other in others)):
            try:
                base = replace(facts, **dict(zip(others, completion, strict=True)))
            except ValueError:  # contradictory facts
                continue
            outcomes = set()
            for value in TRIAL_VALUES[name]:
                try:
                    outcomes.add(_result(replace(base, **{name: value})))
                except ValueError:
                    continue
            if name in presumed:
                outcomes.add(_result(base))  # left unknown, the fact is presumed
            if len(outcomes) > 1:
                matters = True
                break
        assert matters == (name in advice.missing_facts), name


def test_label_is_always_present() -> None:
    for alert_type in AlertType:
        for facts in (DispositionFacts(alert_type=alert_type), clean(alert_type)):
            advice = advise(facts)
            assert advice.label == ADVICE_LABEL == "建议，由执法人员决定"
            assert advice.to_dict()["label"] == ADVICE_LABEL
    stored = advise(clean("no_hat")).to_dict() | {"label": "已决定"}
    assert DispositionAdvice.from_dict(stored).label == ADVICE_LABEL  # the label is not data


@pytest.mark.parametrize("alert_type", ["camera_offline", "camera_covered", "camera_moved", "camera_blurred"])
def test_camera_alert_is_no_penalty_with_an_explanation(alert_type: str) -> None:
    advice = advise(DispositionFacts(alert_type=alert_type))
    assert advice.recommendation is Recommendation.no_penalty
    assert "不是食品安全违法行为" in advice.explanation
    assert advice.missing_facts == ["deliberate_tampering"]
    assert not (advice.three_penalties_flag or advice.licence_floor_warning or advice.interview_suggested)
    known = advise(DispositionFacts(alert_type=alert_type, deliberate_tampering=False, prior_penalties_12m=5))
    assert known.missing_facts == [] and not known.three_penalties_flag


def test_camera_tampering_suggests_interview_and_watchlist() -> None:
    advice = advise(DispositionFacts(alert_type="camera_moved", deliberate_tampering=True))
    assert advice.recommendation is Recommendation.transfer
    assert advice.interview_suggested
    assert any("重点监控名单" in condition for condition in advice.conditions)


def test_licence_expiring_is_a_reminder() -> None:
    advice = advise(DispositionFacts(alert_type="licence_expiring", deadline_missed=True))
    assert advice.recommendation is Recommendation.no_penalty
    assert "尚无违法" in advice.explanation
    assert advice.missing_facts == []
    assert not alert_type_info("licence_expiring").is_violation


def test_special_population_adds_the_canteen_item_without_changing_the_recommendation() -> None:
    plain = advise(clean("no_hat"))
    canteen = advise(clean("no_hat", special_population=True))
    assert canteen.recommendation is plain.recommendation
    assert FSL_126_12 in canteen.articles and FSL_126_12 not in plain.articles


def test_a_finer_citation_is_not_repeated_coarser() -> None:
    advice = advise(clean("no_hat", prior_same_type_24m=1))
    assert "《中华人民共和国食品安全法》第一百二十六条第一款" not in advice.articles
    assert "《中华人民共和国食品安全法》第一百二十六条第一款第十三项" in advice.articles


def test_legal_basis_defaults_to_the_taxonomy_and_can_be_overridden() -> None:
    assert clean("health_cert_expired").legal_basis == alert_type_info("health_cert_expired").legal_basis
    basis = "《中华人民共和国食品安全法》第一百三十二条"
    advice = advise(replace(clean("no_hat", prior_same_type_24m=1), legal_basis=basis))
    assert advice.articles[0] == basis
    assert advice.recommendation is Recommendation.penalty
    assert advice.fine_range is None  # the 126 ladder is not applied to another article


@pytest.mark.parametrize("case", TABLE, ids=[case[0] for case in TABLE])
def test_dict_round_trip_through_json(case: tuple[Any, ...]) -> None:
    advice = advise(case[1])
    data = json.loads(json.dumps(advice.to_dict(), ensure_ascii=False))
    assert data["recommendation_label"] == advice.recommendation.label_zh
    assert DispositionAdvice.from_dict(data) == advice
    assert DispositionFacts.from_dict(data["facts"]) == advice.facts


def test_from_dict_ignores_keys_it_does_not_know() -> None:
    advice = advise(clean("pest"))
    data = advice.to_dict()
    data["added_later"] = 1
    data["facts"]["added_later"] = True
    assert DispositionAdvice.from_dict(data) == advice


def test_facts_are_normalised_and_checked() -> None:
    facts = DispositionFacts(alert_type="pest", harm="minor")
    assert facts.alert_type is AlertType.pest and facts.harm is Harm.minor
    with pytest.raises(ValueError, match="unknown harm 'severe'"):
        DispositionFacts(alert_type="pest", harm="severe")
    with pytest.raises(ValueError, match="prior_penalties_12m"):
        DispositionFacts(alert_type="pest", prior_penalties_12m=-1)
    with pytest.raises(ValueError, match="unknown alert type"):
        DispositionFacts(alert_type="no_gloves")
    with pytest.raises(ValueError, match="contradicts"):
        DispositionFacts(alert_type="pest", rectified_within_deadline=True, deadline_missed=True)


def test_recommendation_labels() -> None:
    assert [r.label_zh for r in Recommendation] == ["不予处罚", "首违不罚", "从轻", "依法处罚", "从重", "移交"]
