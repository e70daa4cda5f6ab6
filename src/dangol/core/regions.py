"""Korean provinces (시/도) with their common short names, for normalising and targeting addresses.

The list of the 17 first-level divisions and their districts is public administrative data (행정안전부 행정구역).
"""
from __future__ import annotations

import unicodedata

SIDO = [
    ("서울특별시", ["서울", "서울시", "Seoul"]),
    ("부산광역시", ["부산", "부산시", "Busan"]),
    ("대구광역시", ["대구", "대구시", "Daegu"]),
    ("인천광역시", ["인천", "인천시", "Incheon"]),
    ("광주광역시", ["광주", "광주시", "Gwangju"]),
    ("대전광역시", ["대전", "대전시", "Daejeon"]),
    ("울산광역시", ["울산", "울산시", "Ulsan"]),
    ("세종특별자치시", ["세종", "세종시", "Sejong"]),
    ("경기도", ["경기", "Gyeonggi"]),
    ("강원특별자치도", ["강원", "강원도", "Gangwon"]),
    ("충청북도", ["충북", "Chungbuk"]),
    ("충청남도", ["충남", "Chungnam"]),
    ("전북특별자치도", ["전북", "전라북도", "Jeonbuk"]),
    ("전라남도", ["전남", "Jeonnam"]),
    ("경상북도", ["경북", "Gyeongbuk"]),
    ("경상남도", ["경남", "Gyeongnam"]),
    ("제주특별자치도", ["제주", "제주도", "Jeju"]),
]
SIDO_NAMES = [name for name, _aliases in SIDO]
_ALIASES = {alias.lower(): name for name, aliases in SIDO for alias in [name, *aliases]}

SEOUL_DISTRICTS = [
    "강남구", "강동구", "강북구", "강서구", "관악구", "광진구", "구로구", "금천구", "노원구", "도봉구", "동대문구", "동작구",
    "마포구", "서대문구", "서초구", "성동구", "성북구", "송파구", "양천구", "영등포구", "용산구", "은평구", "종로구", "중구", "중랑구",
]
BUSAN_DISTRICTS = [
    "강서구", "금정구", "기장군", "남구", "동구", "동래구", "부산진구", "북구", "사상구", "사하구", "서구", "수영구", "연제구",
    "영도구", "중구", "해운대구",
]
GYEONGGI_CITIES = ["성남시", "수원시", "용인시", "고양시", "부천시", "안양시", "화성시", "남양주시", "하남시", "과천시"]


def normalize_sido(raw: str) -> str | None:
    """The official 시/도 name for a full or short form ("서울" → "서울특별시"), '' for blank, None if unknown."""
    text = unicodedata.normalize("NFC", (raw or "").strip())
    if not text:
        return ""
    return _ALIASES.get(text.lower())
