import pytest
from django.core.exceptions import ValidationError

from dangol.core.masking import mask_email, mask_name
from dangol.core.phones import display_phone, last_four, looks_like_phone_query, mask_phone, normalize_phone
from dangol.core.regions import normalize_sido


@pytest.mark.parametrize("raw", ["010-1234-5678", "01012345678", "010 1234 5678", "+82 10-1234-5678", "+821012345678", "(010)1234-5678"])
def test_it_normalises_common_korean_mobile_formats(raw):
    assert normalize_phone(raw) == "+821012345678"


def test_it_keeps_seoul_landlines():
    assert normalize_phone("02-312-3456") == "+8223123456"
    assert display_phone("+8223123456") == "02-312-3456"


@pytest.mark.parametrize("raw", ["", "   ", "hello", "010-12", "123", "010-1234-56789012"])
def test_it_rejects_what_is_not_a_phone_number(raw):
    with pytest.raises(ValidationError):
        normalize_phone(raw)


def test_it_masks_the_middle_group_and_keeps_the_last_four():
    assert mask_phone("+821012345678") == "010-****-5678"
    assert mask_phone("+8223123456") == "02-***-3456"
    assert last_four("+821012345678") == "5678"


def test_it_masks_names_and_emails():
    assert mask_name("홍길동") == "홍*동"
    assert mask_name("남궁민수") == "남**수"
    assert mask_name("이영") == "이*"
    assert mask_name("John Smith") == "J*** S****"
    assert mask_email("hong@example.com") == "h***@example.com"


def test_it_tells_phone_queries_from_names():
    assert looks_like_phone_query("5678")
    assert looks_like_phone_query("010-1234-5678")
    assert not looks_like_phone_query("김하늘")
    assert not looks_like_phone_query("")


def test_it_normalises_province_names():
    assert normalize_sido("서울") == "서울특별시"
    assert normalize_sido("경기도") == "경기도"
    assert normalize_sido("") == ""
    assert normalize_sido("Atlantis") is None
