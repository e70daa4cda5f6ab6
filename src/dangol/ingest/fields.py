"""What an import file's columns can mean, and how their headers are recognised (Korean and English)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .models import ImportKind


@dataclass(frozen=True)
class Field:
    key: str
    label: Promise
    synonyms: tuple[str, ...]
    required: bool = False


CUSTOMER_FIELDS = [
    Field("source_id", _("Customer id at the unit"), ("회원번호", "고객번호", "고객id", "회원id", "고객코드", "회원코드", "멤버십번호",
                                                      "memberno", "membernumber", "customerid", "customerno", "id")),
    Field("name", _("Name"), ("이름", "성명", "고객명", "회원명", "name", "fullname", "customername"), required=True),
    Field("phone", _("Mobile phone"), ("휴대폰", "핸드폰", "휴대전화", "휴대폰번호", "핸드폰번호", "전화번호", "연락처", "전화",
                                       "mobile", "phone", "phonenumber", "cellphone", "tel")),
    Field("email", _("Email"), ("이메일", "메일", "전자우편", "이메일주소", "email", "emailaddress", "mail")),
    Field("gender", _("Gender"), ("성별", "gender", "sex")),
    Field("birth_date", _("Birth date"), ("생년월일", "생일", "출생일", "birthdate", "birthday", "dateofbirth", "dob")),
    Field("birth_lunar", _("Birthday is lunar"), ("음력", "음양", "양음", "양력음력", "음력여부", "음양력", "lunar", "islunar")),
    Field("address", _("Address"), ("주소", "집주소", "자택주소", "address", "homeaddress")),
    Field("postal_code", _("Postal code"), ("우편번호", "postalcode", "zipcode", "zip", "postcode")),
    Field("joined_at", _("Joined on"), ("가입일", "가입일자", "등록일", "등록일자", "회원가입일", "joined", "joinedat", "joindate",
                                        "registeredat", "signupdate")),
    Field("consent_sms", _("SMS consent"), ("sms수신동의", "sms동의", "문자수신동의", "문자동의", "sms수신", "smsconsent", "smsoptin")),
    Field("consent_kakao", _("KakaoTalk consent"), ("카카오톡수신동의", "카톡수신동의", "카카오수신동의", "카카오톡동의", "kakaoconsent",
                                                   "kakaooptin")),
    Field("consent_email", _("Email consent"), ("이메일수신동의", "메일수신동의", "이메일동의", "이메일수신", "emailconsent", "emailoptin")),
    Field("consent_post", _("Direct mail consent"), ("우편수신동의", "dm수신동의", "우편물수신동의", "우편동의", "postconsent", "dmconsent")),
    Field("consent_phone", _("Phone call consent"), ("전화수신동의", "tm수신동의", "tm동의", "전화동의", "phoneconsent", "tmconsent")),
    Field("consent_night", _("Night-time ad consent"), ("야간수신동의", "야간광고수신동의", "야간동의", "nightconsent", "nightoptin")),
]

ORDER_FIELDS = [
    Field("order_no", _("Order number"), ("주문번호", "영수증번호", "거래번호", "전표번호", "orderno", "ordernumber", "orderid",
                                         "receiptno", "receiptnumber"), required=True),
    Field("customer_source_id", _("Customer id at the unit"), ("회원번호", "고객번호", "고객id", "회원id", "고객코드", "회원코드",
                                                              "멤버십번호", "memberno", "membernumber", "customerid", "customerno")),
    Field("customer_phone", _("Customer phone"), ("휴대폰", "핸드폰", "휴대전화", "휴대폰번호", "핸드폰번호", "휴대전화번호", "전화번호",
                                                  "연락처", "전화", "phone", "mobile", "phonenumber", "cellphone", "tel",
                                                  "customerphone")),
    Field("ordered_at", _("Ordered at"), ("주문일시", "주문일", "주문일자", "구매일", "구매일시", "구매일자", "거래일", "거래일시",
                                          "거래일자", "판매일", "판매일시", "판매일자", "결제일", "결제일시", "결제일자", "일시",
                                          "orderedat", "orderdate", "date", "datetime"), required=True),
    Field("sku", _("Product code"), ("상품코드", "품목코드", "제품코드", "sku", "productcode", "itemcode"), required=True),
    Field("quantity", _("Quantity"), ("수량", "quantity", "qty"), required=True),
    Field("unit_price", _("Unit price"), ("단가", "판매가", "판매단가", "unitprice", "price")),
    Field("kind", _("Sale or refund"), ("구분", "거래구분", "판매구분", "kind", "type")),
    Field("refund_of", _("Original order number (refunds)"), ("원주문번호", "원거래번호", "원영수증번호", "refundof", "originalorder")),
    Field("channel", _("Sales channel"), ("채널", "판매채널", "channel")),
]

FIELDS = {ImportKind.CUSTOMERS: CUSTOMER_FIELDS, ImportKind.ORDERS: ORDER_FIELDS}
CONSENT_FIELDS = {"consent_sms": "sms", "consent_kakao": "kakao", "consent_email": "email", "consent_post": "post",
                  "consent_phone": "phone"}

_HEADER_NOISE = re.compile(r"[\s_\-./()\[\]:*]+")


def header_key(header: str) -> str:
    """'SMS 수신 동의(Y/N)' → 'sms수신동의yn': how a header is compared with the synonyms."""
    text = unicodedata.normalize("NFC", header or "").lower()
    text = re.sub(r"\((?:y/?n|yn|o/?x|예/?아니오)\)", "", text)
    return _HEADER_NOISE.sub("", text)


def fields_for(kind: str) -> list[Field]:
    return FIELDS[ImportKind(kind)]


def guess_mapping(headers: list[str], kind: str) -> dict[str, str]:
    """Map each recognised header to a field; each field at most once (the first matching column wins)."""
    by_synonym = {synonym: field.key for field in fields_for(kind) for synonym in field.synonyms}
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = by_synonym.get(header_key(header))
        if key and key not in taken:
            mapping[header] = key
            taken.add(key)
    return mapping


def check_mapping(mapping: dict[str, str], headers: list[str], kind: str) -> list[str]:
    """Messages for a mapping that cannot be imported (unknown column or field, a field twice, a required one missing)."""
    known = {field.key: field for field in fields_for(kind)}
    problems = []
    used: dict[str, str] = {}
    for header, key in mapping.items():
        if not key:
            continue
        if header not in headers:
            problems.append(_("The file has no column “%(column)s”.") % {"column": header})
        if key not in known:
            problems.append(_("“%(field)s” is not a field Dangol imports.") % {"field": key})
        elif key in used:
            problems.append(_("Both “%(a)s” and “%(b)s” are mapped to %(field)s.") % {"a": used[key], "b": header,
                                                                                   "field": known[key].label})
        used.setdefault(key, header)
    for field in fields_for(kind):
        if field.required and field.key not in used:
            problems.append(_("No column is mapped to %(field)s, which every row needs.") % {"field": field.label})
    if kind == ImportKind.CUSTOMERS and not used.keys() & {"source_id", "phone", "email"}:
        problems.append(_("Map a customer id, a phone or an email column, so that rows can be matched on the next import."))
    return [str(problem) for problem in problems]  # text, not lazy strings: callers join them into one message
