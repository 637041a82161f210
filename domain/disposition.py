"""处置建议: inclusive-prudent disposition advice (办法 第十九、二十条; domain note §4.4, the recommendation table).

Pure: no database, no Temporal, nothing but the standard library and the alert taxonomy, so a workflow, an
activity and a page can all call ``advise`` and get the same answer for the same facts.

The engine **recommends**; an officer decides (行政处罚法 第四十四、四十五、六十二条 require 告知 and 陈述申辩
before any decision). Every advice therefore carries ``ADVICE_LABEL``, the articles it rests on, the conditions
it found met and the facts it did not know.

How it reasons
--------------
A fact is known (a bool, a number, a harm level) or unknown (``None``). A condition resting on an unknown fact
is neither met nor failed. The rules of the table are tried from the most severe to the most lenient; the first
rule whose conditions are all met gives the recommendation. Both leniency (rows 1, 2, 6) and aggravation
(rows 4, 5, 7) must be established by known facts: an unknown fact never excuses and never aggravates. When no
leniency can be established the violation is 依法处罚 (办法 第二十条: 严禁有案不查、以管代罚).

``missing_facts`` names every unknown fact that could change the result: the unknown facts of each rule tried
before the chosen one that was not ruled out (filling them in could make it apply instead), and the unknown
facts behind the warning flags.

Reading of the table, where the note leaves room (each choice is the bureau's to confirm with 法规科):

* 违法行为轻微 (row 1, 33① first sentence) is read as a dress or behaviour lapse that can be put right on the
  spot (no hat, phone use …), by a merchant with no same-type violation in 24 months. Pests, health
  certificates and licences are never "trivial".
* 初次违法 means no substantiated case of the same alert type in the 24 months before, and not a repeat after an
  earlier rectification.
* A merchant already penalised twice in 12 months (第一百三十四条) or penalised for the same kind of violation in
  the last year (实施条例 第六十七条第一款第五项) gets no leniency: 办法 第二十条 屡犯不改 → 从重.
* Refused inspection and deliberate camera tampering are 移交: the brigade investigates whether
  第一百三十三条 applies (办法 第六条第三项: complex clues go to the brigade), and 约谈 is suggested.
* Under 第一百二十六条 the first sanction is a warning; a fine (5,000–50,000 元) follows 拒不改正. A merchant who
  did not rectify by the deadline is treated as 拒不改正 for the fine range (the officer confirms it).
* A lapsed licence (row 6) qualifies for 首违不罚 when the lapse is under a month, the offence is a first and it
  was corrected in time, all known. The list's two other conditions (still meets the licence conditions, no
  incident while valid) are facts the platform rarely holds and that usually hold: when unknown they are
  presumed, marked 待核实 and listed as missing, so the officer confirms them before deciding.
* ``special_population`` (a canteen serving a school, kindergarten or care home) never changes the
  recommendation; it adds 第一百二十六条第一款第十二项 to what the officer should review.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from domain.alerts.taxonomy import LAPSED_LICENCE, AlertCategory, AlertType, alert_type_info

ADVICE_LABEL = "建议，由执法人员决定"

# A lapsed licence qualifies for the 首违不罚 list only when it lapsed "不足1个月". Counted in days, and
# conservatively: the shortest reading of a month, so the engine never promises leniency the list may not give.
LICENCE_GRACE_DAYS = 30

# ---------------------------------------------------------------------------------------------------------
# Articles (checked against the statute texts of LawRefBook/Laws; the SAMR list is a secondary source, §4.3 🟡)

APL_32_1 = "《中华人民共和国行政处罚法》第三十二条第一项"  # 主动消除或者减轻违法行为危害后果 → 应当从轻或者减轻
APL_33_1 = "《中华人民共和国行政处罚法》第三十三条第一款"  # 轻微+及时改正+无危害 → 不予; 初次+轻微+及时改正 → 可以不予
APL_33_3 = "《中华人民共和国行政处罚法》第三十三条第三款"  # 不予处罚的，应当对当事人进行教育
APL_51 = "《中华人民共和国行政处罚法》第五十一条"  # 当场处罚: 警告, or ≤ 200 元 (公民) / ≤ 3,000 元 (单位)
APL_63 = "《中华人民共和国行政处罚法》第六十三条"  # 责令停产停业、吊销许可证件 → 告知听证权利
FSL_114 = "《中华人民共和国食品安全法》第一百一十四条"  # 责任约谈
FSL_122 = LAPSED_LICENCE
FSL_126 = "《中华人民共和国食品安全法》第一百二十六条第一款"
FSL_126_12 = "《中华人民共和国食品安全法》第一百二十六条第一款第十二项"  # 学校、托幼机构、养老机构等集中用餐单位
FSL_133 = "《中华人民共和国食品安全法》第一百三十三条第一款"  # 拒绝、阻挠监督检查
FSL_134 = "《中华人民共和国食品安全法》第一百三十四条"  # 一年内累计三次处罚 → 责令停产停业，直至吊销许可证
REG_67_1_4 = "《中华人民共和国食品安全法实施条例》第六十七条第一款第四项"  # 拒绝、逃避监督检查 = 情节严重
REG_67_1_5 = "《中华人民共和国食品安全法实施条例》第六十七条第一款第五项"  # 处罚后1年内又实施同一性质违法行为
REG_67_2 = "《中华人民共和国食品安全法实施条例》第六十七条第二款"  # 情节严重的，罚款依法从重从严
INSPECTION_51 = "《食品生产经营监督检查管理办法》第五十一条"  # 首违不罚 restated for food
SAMR_FIRST_OFFENCE_LIST = "市场监管总局《首违不罚清单(一)》(2025)"
_HEXI = "《河西区阳光食品工程智慧监管平台运行使用办法(试行)》"
HEXI_6_3 = f"{_HEXI}第六条第三项"  # 复杂案件线索 → 移交综合行政执法支队
HEXI_12_2 = f"{_HEXI}第十二条第二款"  # 故意断网、断电或扭转摄像头 → 约谈，列入重点监控名单
HEXI_19_2 = f"{_HEXI}第十九条第二款"  # 初次违法、危害后果轻微并及时改正 → 不予、从轻或减轻
HEXI_19_3 = f"{_HEXI}第十九条第三款"  # 承诺改正但未在限期内整改到位，或整改后重复再犯 → 依法处罚
HEXI_20 = f"{_HEXI}第二十条"  # 屡犯不改 → 从重，直至吊销; 严禁有案不查、以管代罚

# Sanction texts (食品安全法 第一百二十二、一百二十六、一百三十三条)
WARNING_126 = "责令改正，给予警告"
LADDER_126 = "责令改正，给予警告；拒不改正的，处五千元以上五万元以下罚款；情节严重的，责令停产停业，直至吊销许可证"
FINE_RANGE_126 = "5,000–50,000 元"
FINE_RANGE_122 = "50,000–100,000 元（货值不足一万元）；货值一万元以上的，货值金额十倍以上二十倍以下"
FINE_RANGE_133 = "2,000–50,000 元"
LICENCE_FLOOR_TEXT = "无证经营（许可证逾期未延续）罚款下限为五万元（第一百二十二条）"


class Recommendation(StrEnum):
    no_penalty = "no_penalty"
    first_offence_no_penalty = "first_offence_no_penalty"
    lighter = "lighter"
    penalty = "penalty"
    heavier = "heavier"
    transfer = "transfer"

    @property
    def label_zh(self) -> str:
        return RECOMMENDATION_LABELS[self]


RECOMMENDATION_LABELS: dict[Recommendation, str] = {
    Recommendation.no_penalty: "不予处罚",
    Recommendation.first_offence_no_penalty: "首违不罚",
    Recommendation.lighter: "从轻",
    Recommendation.penalty: "依法处罚",
    Recommendation.heavier: "从重",
    Recommendation.transfer: "移交",
}


class Harm(StrEnum):
    none = "none"  # 没有造成危害后果
    minor = "minor"  # 危害后果轻微
    actual = "actual"  # 造成危害后果


# What each fact means, for pages that list the missing ones.
FACT_LABELS: dict[str, str] = {
    "prior_same_type_24m": "24个月内同类违法次数",
    "prior_penalties_12m": "12个月内受处罚次数",
    "prior_same_type_penalties_12m": "12个月内因同类违法受处罚次数",
    "rectified": "是否已整改",
    "rectified_within_deadline": "是否在期限内整改到位",
    "harm": "危害后果（无 / 轻微 / 已造成）",
    "lapse_days": "许可证逾期天数",
    "meets_licence_conditions": "是否仍符合许可条件",
    "incident_during_validity": "许可证有效期内是否发生食品安全事故",
    "refused_inspection": "是否拒绝、阻挠监督检查",
    "deliberate_tampering": "是否故意断网、断电或扭转摄像头",
    "special_population": "是否为学校、托幼机构、养老机构等集中用餐单位",
}


@dataclass(frozen=True)
class DispositionFacts:
    """What is known about one case. ``None`` means unknown, and is reported as a missing fact where it matters.

    ``legal_basis`` defaults to the alert type's basis (taxonomy); an officer may cite another. Which rules
    apply follows the basis: 第一百二十二条 → the lapsed-licence rules, 第一百二十六条 → its warning/fine ladder.
    """

    alert_type: AlertType | str  # normalised to AlertType
    legal_basis: str = ""
    prior_same_type_24m: int | None = None  # substantiated same-type cases in the 24 months before
    prior_penalties_12m: int | None = None  # penalties (other than suspension/revocation) in the 12 months before
    # Penalties for the same kind of violation in the 12 months before (实施条例 第六十七条第一款第五项).
    prior_same_type_penalties_12m: int | None = None
    rectified: bool | None = None
    rectified_within_deadline: bool | None = None
    harm: Harm | str | None = None  # normalised to Harm
    lapse_days: int | None = None  # licence_expired: days since the licence lapsed
    # licence_expired, 首违不罚 list conditions: still meets the licence conditions; no incident while valid.
    meets_licence_conditions: bool | None = None
    incident_during_validity: bool | None = None
    refused_inspection: bool | None = None
    deliberate_tampering: bool | None = None
    repeat_after_rectification: bool = False  # same type again after a rectified case (办法 第十九条第三款)
    deadline_missed: bool = False  # promised, but not rectified by the deadline
    special_population: bool | None = None

    def __post_init__(self) -> None:
        # Coerce JSON-native values (from workflow state, API bodies) and reject impossible ones.
        info = alert_type_info(self.alert_type)
        object.__setattr__(self, "alert_type", info.alert_type)
        if not self.legal_basis:
            object.__setattr__(self, "legal_basis", info.legal_basis)
        if self.harm is not None:
            try:
                object.__setattr__(self, "harm", Harm(self.harm))
            except ValueError:
                known = ", ".join(level.value for level in Harm)
                raise ValueError(f"unknown harm {self.harm!r}; known: {known}") from None
        if self.rectified_within_deadline and (self.rectified is False or self.deadline_missed):
            raise ValueError("rectified_within_deadline contradicts rectified=False or deadline_missed=True")
        for name in ("prior_same_type_24m", "prior_penalties_12m", "prior_same_type_penalties_12m", "lapse_days"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a whole number ≥ 0 or None, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {item.name: _plain(getattr(self, item.name)) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DispositionFacts:
        # Keys this version does not know are ignored, so advice stored by a newer version still reads.
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class DispositionAdvice:
    """A recommendation for the officer, never a decision. JSON-able via ``to_dict`` / ``from_dict``."""

    facts: DispositionFacts
    recommendation: Recommendation
    rule: str  # which rule gave the recommendation (stable key, see ``RULES``)
    table_row: int | None  # the row of the recommendation table (domain note §4.4); None: outside the table
    articles: list[str]
    conditions: list[str]  # the conditions found met, in plain Chinese
    missing_facts: list[str]  # names of unknown facts that could change the result (see FACT_LABELS)
    sanction: str  # what the cited articles provide for this case
    fine_range: str | None
    explanation: str
    three_penalties_flag: bool = False  # 第一百三十四条: already ≥ 2 penalties in 12 months
    licence_floor_warning: bool = False  # 第一百二十二条: fines start at 50,000 元
    interview_suggested: bool = False  # 第一百一十四条 责任约谈
    summary_procedure_possible: bool = False  # 行政处罚法 第五十一条: a warning may be decided on the spot
    label: str = ADVICE_LABEL

    @property
    def recommendation_label(self) -> str:
        return self.recommendation.label_zh

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: _plain(getattr(self, item.name)) for item in fields(self) if item.name != "facts"}
        data["facts"] = self.facts.to_dict()
        data["recommendation_label"] = self.recommendation_label  # for readers without this module
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DispositionAdvice:
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["facts"] = DispositionFacts.from_dict(data["facts"])
        values["recommendation"] = Recommendation(data["recommendation"])
        for name in ("articles", "conditions", "missing_facts"):
            values[name] = list(data.get(name, []))
        values["label"] = ADVICE_LABEL  # the label is not data: it is always this one
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list | tuple):
        return list(value)
    return value


# ---------------------------------------------------------------------------------------------------------
# Conditions (three-valued)


@dataclass(frozen=True)
class _Check:
    met: bool | None
    text: str  # the condition, as shown when met
    unknown: tuple[str, ...] = ()  # the unknown facts it rests on (only when ``met`` is None)
    failed_text: str = ""  # shown when the condition fails and the reason helps the officer
    # Facts presumed when unknown (the condition counts as met), still reported as missing for the officer.
    presumed: tuple[str, ...] = ()


def _unknown(*names: str, text: str = "") -> _Check:
    return _Check(None, text, names)


def _obstruction(facts: DispositionFacts, *, tampering_only: bool = False) -> _Check:
    findings = {
        "refused_inspection": (None if tampering_only else facts.refused_inspection, "拒绝、阻挠监督检查"),
        "deliberate_tampering": (facts.deliberate_tampering, "故意断网、断电或扭转摄像头"),
    }
    if tampering_only:
        del findings["refused_inspection"]
    met = [text for value, text in findings.values() if value]
    if met:
        return _Check(True, "；".join(met))
    unknown = tuple(name for name, (value, _) in findings.items() if value is None)
    return _unknown(*unknown) if unknown else _Check(False, "")


def _at_least(facts: DispositionFacts, name: str, threshold: int, text: str) -> _Check:
    value = getattr(facts, name)
    if value is None:
        return _unknown(name)
    return _Check(value >= threshold, text.format(value=value))


def _first_offence(facts: DispositionFacts) -> _Check:
    if facts.repeat_after_rectification:
        return _Check(False, "", failed_text="整改后重复再犯")
    if facts.prior_same_type_24m is None:
        return _unknown("prior_same_type_24m")
    return _Check(
        facts.prior_same_type_24m == 0,
        "初次违法：24个月内无同类违法",
        failed_text=f"非初次违法：24个月内已有{facts.prior_same_type_24m}次同类违法",
    )


def _in_time(facts: DispositionFacts) -> _Check:
    """Rectified by the deadline (及时改正)."""
    if facts.deadline_missed:
        return _Check(False, "", failed_text="承诺改正但未在限期内整改到位")
    if facts.rectified_within_deadline:  # implies rectified (contradictions are refused by DispositionFacts)
        return _Check(True, "在期限内整改到位（及时改正）")
    if facts.rectified is False:
        return _Check(False, "", failed_text="未整改")
    if facts.rectified_within_deadline is False:
        return _Check(False, "", failed_text="未在期限内整改到位")
    # Only the deadline fact is asked for: once known it settles the question, whatever ``rectified`` says.
    return _unknown("rectified_within_deadline")


def _late(facts: DispositionFacts) -> _Check:
    in_time = _in_time(facts)
    if in_time.met is None:
        return in_time
    return _Check(not in_time.met, in_time.failed_text)


def _harm_in(facts: DispositionFacts, allowed: set[Harm], text: str) -> _Check:
    if facts.harm is None:
        return _unknown("harm")
    return _Check(facts.harm in allowed, text, failed_text="造成危害后果" if facts.harm is Harm.actual else "")


def _presumed(facts: DispositionFacts, name: str, wanted: bool, text: str, failed_text: str) -> _Check:
    """A list condition the platform rarely knows and that usually holds: presumed, and listed as missing."""
    value = getattr(facts, name)
    if value is None:
        return _Check(True, f"{text}（待核实）", presumed=(name,))
    return _Check(value is wanted, text, failed_text=failed_text)


def _lapse_short(facts: DispositionFacts) -> _Check:
    if facts.lapse_days is None:
        return _unknown("lapse_days")
    return _Check(
        facts.lapse_days < LICENCE_GRACE_DAYS,
        f"许可证逾期不足1个月（{facts.lapse_days}天）",
        failed_text=f"许可证逾期已满1个月（{facts.lapse_days}天），不适用首违不罚清单",
    )


def _always() -> _Check:
    return _Check(True, "")


# ---------------------------------------------------------------------------------------------------------
# Rules, most severe first. Each returns its checks; the first rule with every check met decides.

Checks = Callable[[DispositionFacts], list[_Check]]


def _checks_obstruction(facts: DispositionFacts) -> list[_Check]:
    return [_obstruction(facts)]


def _checks_tampering(facts: DispositionFacts) -> list[_Check]:
    return [_obstruction(facts, tampering_only=True)]


def _checks_three_penalties(facts: DispositionFacts) -> list[_Check]:
    return [_at_least(facts, "prior_penalties_12m", 2, "12个月内已受处罚{value}次，本次如再处罚即为第三次")]


def _checks_serious_repeat(facts: DispositionFacts) -> list[_Check]:
    text = "受到行政处罚后1年内又实施同一性质的违法行为（12个月内同类处罚{value}次），属情节严重"
    return [_at_least(facts, "prior_same_type_penalties_12m", 1, text)]


def _checks_repeat(facts: DispositionFacts) -> list[_Check]:
    return [_Check(facts.repeat_after_rectification, "整改后重复再犯")]


def _checks_late(facts: DispositionFacts) -> list[_Check]:
    return [_late(facts)]


def _checks_minor(facts: DispositionFacts) -> list[_Check]:
    return [
        _Check(True, "违法行为轻微：可当场纠正的着装、行为问题"),
        _first_offence(facts),
        _harm_in(facts, {Harm.none}, "没有造成危害后果"),
        _in_time(facts),
    ]


def _checks_first_offence(facts: DispositionFacts) -> list[_Check]:
    return [
        _first_offence(facts),
        _harm_in(facts, {Harm.none, Harm.minor}, "危害后果轻微"),
        _in_time(facts),
    ]


def _checks_lighter(facts: DispositionFacts) -> list[_Check]:
    return [
        _first_offence(facts),
        _harm_in(facts, {Harm.actual}, "造成危害后果，但及时整改，主动消除或者减轻危害后果"),
        _in_time(facts),
    ]


def _checks_not_first(facts: DispositionFacts) -> list[_Check]:
    first = _first_offence(facts)
    not_first = first if first.met is None else _Check(not first.met, first.failed_text)
    return [not_first, _in_time(facts)]


def _checks_licence_first_offence(facts: DispositionFacts) -> list[_Check]:
    return [
        _first_offence(facts),
        _lapse_short(facts),
        _presumed(facts, "meets_licence_conditions", True, "仍符合许可条件", "已不符合许可条件"),
        _presumed(
            facts,
            "incident_during_validity",
            False,
            "许可证有效期内未发生食品安全事故",
            "许可证有效期内发生过食品安全事故",
        ),
        _in_time(facts),
    ]


def _checks_default(facts: DispositionFacts) -> list[_Check]:
    return [_always()]


class _Family(StrEnum):
    not_violation = "not_violation"  # camera faults, licence reminders
    process_126 = "process_126"  # 食品安全法 第一百二十六条
    licence_122 = "licence_122"  # 食品安全法 第一百二十二条
    other = "other"  # a basis the officer cited that the table does not cover


# rule key → (table row, checks)
RULES: dict[str, tuple[int | None, Checks]] = {
    "obstruction": (7, _checks_obstruction),
    "camera_tampering": (7, _checks_tampering),
    "three_penalties": (5, _checks_three_penalties),
    "serious_repeat": (4, _checks_serious_repeat),
    "repeat_after_rectification": (3, _checks_repeat),
    "not_rectified_in_time": (3, _checks_late),
    "minor_no_harm": (1, _checks_minor),
    "first_offence": (2, _checks_first_offence),
    "lighter_harm_remedied": (3, _checks_lighter),
    "not_first_offence": (3, _checks_not_first),
    "facts_incomplete": (None, _checks_default),
    "licence_first_offence": (6, _checks_licence_first_offence),
    "licence_floor": (6, _checks_default),
    "camera_signal": (None, _checks_default),
    "licence_reminder": (None, _checks_default),
}


def _rule_order(facts: DispositionFacts, family: _Family) -> list[str]:
    info = alert_type_info(facts.alert_type)
    if family is _Family.not_violation:
        if info.category is AlertCategory.camera:
            return ["camera_tampering", "camera_signal"]
        return ["licence_reminder"]
    if family is _Family.licence_122:
        return ["obstruction", "three_penalties", "licence_first_offence", "licence_floor"]
    trivial = info.immediate_rectification and info.category in (AlertCategory.dress, AlertCategory.behaviour)
    return [
        "obstruction",
        "three_penalties",
        # 实施条例 第六十七条 defines 情节严重 for 第一百二十三至一百二十六、一百三十二条 only.
        *(["serious_repeat"] if family is _Family.process_126 else []),
        "repeat_after_rectification",
        "not_rectified_in_time",
        *(["minor_no_harm"] if trivial else []),
        "first_offence",
        "lighter_harm_remedied",
        "not_first_offence",
        "facts_incomplete",
    ]


def _family(facts: DispositionFacts) -> _Family:
    if not alert_type_info(facts.alert_type).is_violation:
        return _Family.not_violation
    if "第一百二十二条" in facts.legal_basis:
        return _Family.licence_122
    if "第一百二十六条" in facts.legal_basis:
        return _Family.process_126
    return _Family.other


# ---------------------------------------------------------------------------------------------------------
# The engine


@dataclass
class _Draft:
    """The advice while it is assembled."""

    recommendation: Recommendation
    sanction: str
    explanation: str
    fine_range: str | None = None
    articles: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    summary_procedure_possible: bool = False
    interview_suggested: bool = False


def advise(facts: DispositionFacts) -> DispositionAdvice:
    """The recommendation of the table for these facts. See the module docstring for how it reasons."""
    family = _family(facts)
    order = _rule_order(facts, family)
    missing: set[str] = set()
    for chosen in order:
        chosen_checks = RULES[chosen][1](facts)
        if all(check.met is True for check in chosen_checks):
            break
        if not any(check.met is False for check in chosen_checks):
            # Not ruled out: knowing these facts could make this rule apply instead.
            missing.update(name for check in chosen_checks for name in (*check.unknown, *check.presumed))
    else:  # every order ends with a rule that always applies
        raise AssertionError(f"no rule applied to {facts!r}")
    missing.update(name for check in chosen_checks for name in check.presumed)

    draft = _OUTCOMES[chosen](facts, family, chosen_checks)
    draft.conditions[:0] = [check.text for check in chosen_checks if check.text]

    three_penalties = family is not _Family.not_violation and (facts.prior_penalties_12m or 0) >= 2
    if family is not _Family.not_violation and facts.prior_penalties_12m is None:
        missing.add("prior_penalties_12m")  # the 第一百三十四条 flag depends on it
    if three_penalties and chosen != "three_penalties":
        draft.conditions.append(f"另：12个月内已受处罚{facts.prior_penalties_12m}次，如再处罚，适用第一百三十四条")
        draft.articles.append(FSL_134)
    licence_floor = (
        family is _Family.licence_122 and draft.recommendation is not Recommendation.first_offence_no_penalty
    )
    if licence_floor and chosen != "licence_floor":
        draft.conditions.append(LICENCE_FLOOR_TEXT)
    if facts.special_population and family is not _Family.not_violation:
        draft.conditions.append("集中用餐单位（学校、托幼机构、养老机构等）：一并审查是否未按规定履行食品安全管理责任")
        draft.articles.append(FSL_126_12)

    return DispositionAdvice(
        facts=facts,
        recommendation=draft.recommendation,
        rule=chosen,
        table_row=RULES[chosen][0],
        articles=_citations(facts.legal_basis, draft.articles),
        conditions=_unique(draft.conditions),
        missing_facts=[item.name for item in fields(DispositionFacts) if item.name in missing],
        sanction=draft.sanction,
        fine_range=draft.fine_range,
        explanation=draft.explanation,
        three_penalties_flag=three_penalties,
        licence_floor_warning=licence_floor,
        interview_suggested=draft.interview_suggested,
        summary_procedure_possible=draft.summary_procedure_possible,
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _citations(basis: str, items: list[str]) -> list[str]:
    """The basis first, then the others once each; one also cited in a finer form is left out (第一百二十六条第一款
    adds nothing beside 第一百二十六条第一款第十三项)."""
    unique = _unique([basis, *items])
    finer = [item for item in unique[1:] if not any(other != item and other.startswith(item) for other in unique)]
    return [basis, *finer]


# ---------------------------------------------------------------------------------------------------------
# What each rule recommends

Outcome = Callable[[DispositionFacts, _Family, list[_Check]], _Draft]


def _outcome_obstruction(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.transfer,
        sanction="移交综合行政执法支队，依第一百三十三条审查：责令停产停业，并处二千元以上五万元以下罚款；"
        "情节严重的，吊销许可证",
        explanation="存在拒绝、阻挠监督检查或故意干扰视频监控的情形：建议移交执法支队调查，并对负责人进行责任约谈。",
        fine_range=FINE_RANGE_133,
        articles=[FSL_133, FSL_114, HEXI_6_3],
        conditions=["建议对法定代表人或主要负责人进行责任约谈（第一百一十四条）"],
        interview_suggested=True,
    )
    if facts.refused_inspection:
        draft.articles.append(REG_67_1_4)
        draft.conditions.append("拒绝、逃避监督检查属情节严重，罚款依法从重从严")
    if facts.deliberate_tampering:
        draft.articles.append(HEXI_12_2)
        draft.conditions.append("列入重点监控名单，从严管理（办法第十二条第二款）")
    if family is not _Family.not_violation:
        draft.conditions.append("预警所涉违法行为一并查处")
    return draft


def _outcome_three_penalties(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    return _Draft(
        Recommendation.heavier,
        sanction="责令停产停业，直至吊销许可证",
        explanation="12个月内已两次受到处罚，屡犯不改：建议从重，适用第一百三十四条责令停产停业。",
        articles=[FSL_134, HEXI_20, APL_63],
        conditions=[
            "屡犯不改，从重处罚（办法第二十条）",
            "责令停产停业、吊销许可证前应告知听证权利（行政处罚法第六十三条）",
        ],
    )


def _outcome_serious_repeat(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    return _Draft(
        Recommendation.heavier,
        sanction="从重处罚；情节严重的，责令停产停业，直至吊销许可证",
        explanation="受处罚后1年内再犯同类违法行为，属情节严重：建议从重，并考虑责令停产停业。",
        fine_range=f"{FINE_RANGE_126}（从重）",
        articles=[REG_67_1_5, REG_67_2, HEXI_20],
    )


def _sanction_for_penalty(facts: DispositionFacts, family: _Family, draft: _Draft, *, in_time: bool | None) -> None:
    """Fill the sanction of a 依法处罚 from the ladder of the cited article."""
    if family is _Family.licence_122:
        _licence_sanction(draft)
    elif family is _Family.process_126:
        draft.articles.append(FSL_126)
        if in_time is True:
            draft.sanction = WARNING_126
            draft.summary_procedure_possible = True
            draft.articles.append(APL_51)
            draft.conditions.append("已及时改正，处警告的，可适用简易程序当场作出（行政处罚法第五十一条）")
        elif in_time is False:
            draft.sanction = "处五千元以上五万元以下罚款（逾期未改正，视为拒不改正，由执法人员认定）"
            draft.fine_range = FINE_RANGE_126
        else:
            draft.sanction = LADDER_126
            draft.fine_range = f"{FINE_RANGE_126}（拒不改正的）"
    else:
        draft.sanction = "依所引条款依法处罚"


def _licence_sanction(draft: _Draft) -> None:
    draft.sanction = "没收违法所得和违法经营的食品以及用于违法经营的工具、设备、原料等物品，并处罚款"
    draft.fine_range = FINE_RANGE_122


def _outcome_repeat(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.penalty,
        sanction="",
        explanation="整改后重复再犯：依办法第十九条第三款依法处罚。",
        articles=[HEXI_19_3],
    )
    _sanction_for_penalty(facts, family, draft, in_time=_in_time(facts).met)
    return draft


def _outcome_late(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.penalty,
        sanction="",
        explanation="承诺改正但未在限期内整改到位：依办法第十九条第三款依法处罚。",
        articles=[HEXI_19_3],
    )
    _sanction_for_penalty(facts, family, draft, in_time=False)
    return draft


def _outcome_minor(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    return _Draft(
        Recommendation.no_penalty,
        sanction="不予行政处罚；责令改正，对当事人进行教育并记录在案",
        explanation="违法行为轻微并及时改正，没有造成危害后果：依法应当不予处罚，并进行教育。",
        articles=[APL_33_1, APL_33_3, HEXI_19_2],
        conditions=["依法应当不予处罚（第三十三条第一款前段）"],
    )


def _outcome_first_offence(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.first_offence_no_penalty,
        sanction="可以不予行政处罚（首违不罚）；责令改正，对当事人进行教育并记录在案",
        explanation="初次违法、危害后果轻微并及时改正：可以不予处罚（首违不罚），由执法人员裁量。",
        articles=[APL_33_1, APL_33_3, HEXI_19_2, INSPECTION_51],
        conditions=["可以不予处罚（第三十三条第一款后段），属裁量"],
    )
    if facts.alert_type is AlertType.health_cert_expired:
        draft.articles.append(SAMR_FIRST_OFFENCE_LIST)
        draft.conditions.append("符合首违不罚清单：安排未取得健康证明的人员从事接触直接入口食品的工作")
    return draft


def _outcome_lighter(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.lighter,
        sanction="",
        explanation="造成危害后果但及时整改、主动消除或者减轻危害后果：依法应当从轻或者减轻处罚。",
        articles=[APL_32_1],
        conditions=["造成危害后果：审查是否属于实施条例第六十七条第一款第二项情节严重情形"],
    )
    _sanction_for_penalty(facts, family, draft, in_time=True)
    if family is _Family.process_126:
        draft.sanction = f"从轻处罚：{WARNING_126}"
    return draft


def _outcome_not_first(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.penalty,
        sanction="",
        explanation="非初次违法，不适用首违不罚：依法处罚（办法第二十条，严禁以管代罚）。",
        articles=[HEXI_20],
    )
    _sanction_for_penalty(facts, family, draft, in_time=True)
    return draft


def _outcome_facts_incomplete(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    draft = _Draft(
        Recommendation.penalty,
        sanction="",
        explanation="从宽处理的条件（及时改正、初次违法、危害后果）尚未确认：依法查处；补齐缺失事实后重新生成建议。",
        articles=[HEXI_20],
        conditions=["从宽处理的条件尚未确认（见缺失事实）"],
    )
    _sanction_for_penalty(facts, family, draft, in_time=_in_time(facts).met)
    return draft


def _outcome_licence_first_offence(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    return _Draft(
        Recommendation.first_offence_no_penalty,
        sanction="可以不予行政处罚（首违不罚）；责令立即停止经营直至依法取得许可，对当事人进行教育并记录在案",
        explanation="许可证逾期不足1个月且符合首违不罚清单条件：可以不予处罚，由执法人员裁量。",
        articles=[APL_33_1, APL_33_3, SAMR_FIRST_OFFENCE_LIST, HEXI_19_2],
        conditions=["符合首违不罚清单：食品经营许可证有效期届满未延续"],
    )


def _outcome_licence_floor(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    list_checks = _checks_licence_first_offence(facts)
    reasons = [check.failed_text for check in list_checks if check.met is False and check.failed_text]
    if any(check.met is None for check in list_checks):
        reasons.append("首违不罚清单条件尚未全部确认（见缺失事实）")
    draft = _Draft(
        Recommendation.penalty,
        sanction="",
        explanation="许可证逾期未延续仍在经营，不符合首违不罚条件：依第一百二十二条处罚，罚款下限五万元。",
        conditions=[*reasons, LICENCE_FLOOR_TEXT],
    )
    _licence_sanction(draft)
    if facts.repeat_after_rectification or facts.deadline_missed:
        draft.articles.append(HEXI_19_3)
    return draft


def _outcome_camera_signal(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    return _Draft(
        Recommendation.no_penalty,
        sanction="不予处罚（视频信号异常不是食品安全违法行为）",
        explanation="视频信号异常不是食品安全违法行为：列入异常经营者名单，由安装维护队伍分析原因、重新调试。",
        conditions=["未发现故意断网、断电或扭转摄像头的情形"] if facts.deliberate_tampering is False else [],
    )


def _outcome_licence_reminder(facts: DispositionFacts, family: _Family, checks: list[_Check]) -> _Draft:
    return _Draft(
        Recommendation.no_penalty,
        sanction="不予处罚（许可证临期提醒，尚无违法行为）",
        explanation="许可证临期提醒，尚无违法行为：督促经营者在有效期届满前申请延续。",
    )


_OUTCOMES: dict[str, Outcome] = {
    "obstruction": _outcome_obstruction,
    "camera_tampering": _outcome_obstruction,
    "three_penalties": _outcome_three_penalties,
    "serious_repeat": _outcome_serious_repeat,
    "repeat_after_rectification": _outcome_repeat,
    "not_rectified_in_time": _outcome_late,
    "minor_no_harm": _outcome_minor,
    "first_offence": _outcome_first_offence,
    "lighter_harm_remedied": _outcome_lighter,
    "not_first_offence": _outcome_not_first,
    "facts_incomplete": _outcome_facts_incomplete,
    "licence_first_offence": _outcome_licence_first_offence,
    "licence_floor": _outcome_licence_floor,
    "camera_signal": _outcome_camera_signal,
    "licence_reminder": _outcome_licence_reminder,
}
