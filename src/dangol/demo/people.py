"""The vocabulary of the generated people: surnames, given-name syllables, romanisation, regions, staff notes.

Everything here is plain data in a fixed order (lists, never sets), so that the generator's random indices into it
give the same people on every run. Weights are relative; the generator normalises them.
"""
from __future__ import annotations

from dangol.core.regions import BUSAN_DISTRICTS, GYEONGGI_CITIES, SEOUL_DISTRICTS

# Surnames with their approximate share of the population (census 2015, per cent), and a romanisation as people
# write it in email addresses (not the official one: 이 is "lee", 박 is "park").
SURNAMES: list[tuple[str, float, str]] = [
    ("김", 21.5, "kim"), ("이", 14.7, "lee"), ("박", 8.4, "park"), ("최", 4.7, "choi"), ("정", 4.3, "jung"),
    ("강", 2.4, "kang"), ("조", 2.1, "cho"), ("윤", 2.1, "yoon"), ("장", 2.0, "jang"), ("임", 1.7, "lim"),
    ("한", 1.5, "han"), ("오", 1.5, "oh"), ("서", 1.4, "seo"), ("신", 1.4, "shin"), ("권", 1.4, "kwon"),
    ("황", 1.4, "hwang"), ("안", 1.3, "ahn"), ("송", 1.3, "song"), ("전", 1.1, "jeon"), ("홍", 1.1, "hong"),
    ("유", 1.1, "yoo"), ("고", 0.9, "ko"), ("문", 0.9, "moon"), ("양", 0.9, "yang"), ("손", 0.9, "son"),
    ("배", 0.8, "bae"), ("백", 0.8, "baek"), ("허", 0.6, "heo"), ("남", 0.5, "nam"), ("심", 0.5, "shim"),
    ("노", 0.4, "noh"), ("하", 0.4, "ha"), ("곽", 0.4, "kwak"), ("성", 0.4, "sung"), ("차", 0.4, "cha"),
    ("주", 0.4, "joo"), ("우", 0.4, "woo"), ("구", 0.4, "koo"), ("류", 0.4, "ryu"), ("민", 0.3, "min"),
    ("진", 0.3, "jin"), ("나", 0.3, "na"), ("지", 0.3, "ji"), ("엄", 0.3, "eom"), ("채", 0.3, "chae"),
    ("원", 0.3, "won"), ("천", 0.2, "cheon"), ("방", 0.2, "bang"), ("공", 0.2, "kong"), ("현", 0.2, "hyun"),
    ("함", 0.2, "ham"), ("변", 0.2, "byun"), ("염", 0.2, "yeom"), ("여", 0.1, "yeo"), ("추", 0.1, "choo"),
    ("도", 0.1, "do"), ("석", 0.1, "seok"), ("설", 0.1, "seol"), ("마", 0.1, "ma"), ("길", 0.1, "gil"),
    ("연", 0.1, "yeon"), ("위", 0.1, "wi"), ("표", 0.1, "pyo"), ("명", 0.1, "myung"), ("기", 0.1, "ki"),
    ("남궁", 0.04, "namgung"), ("황보", 0.02, "hwangbo"), ("제갈", 0.01, "jegal"), ("선우", 0.01, "sunwoo"),
]

# Given names are two syllables drawn from pools by gender and by generation: people born before 1985 carry the
# names of their time (영숙, 정호), younger ones today's (서연, 민준). Earlier syllables in a pool are drawn more often.
GIVEN_POOLS: dict[tuple[str, str], tuple[str, str]] = {
    ("F", "modern"): ("서지민수하예유채윤다은소가아나주연혜세시", "연윤민은아진현원린빈서지유희나영율인주하"),
    ("F", "classic"): ("영미정경현은지혜선순숙명옥희성수윤인말금", "희숙자영미정경순옥선주아란화애향연진혜은"),
    ("M", "modern"): ("민준서도지현시예주하우건유승태재윤은정동", "준호우민현진혁원윤성훈빈서율찬규완후건재"),
    ("M", "classic"): ("영정성상동재종병용광진경명창기철승태한봉", "수호철식석규환기훈민진우영근택국남만길열"),
}
MODERN_FROM_BIRTH_YEAR = 1985

ROMANISED_SYLLABLES: dict[str, str] = {
    "가": "ga", "건": "gun", "경": "kyung", "광": "kwang", "국": "kook", "규": "kyu", "근": "keun", "금": "keum",
    "기": "ki", "길": "gil", "나": "na", "남": "nam", "다": "da", "도": "do", "동": "dong", "란": "ran", "린": "rin",
    "마": "ma", "만": "man", "말": "mal", "명": "myung", "미": "mi", "민": "min", "병": "byung", "봉": "bong",
    "빈": "bin", "상": "sang", "서": "seo", "석": "seok", "선": "sun", "성": "sung", "세": "se", "소": "so",
    "수": "soo", "숙": "sook", "순": "soon", "승": "seung", "시": "si", "식": "sik", "아": "a", "애": "ae",
    "연": "yeon", "열": "yeol", "영": "young", "예": "ye", "옥": "ok", "완": "wan", "용": "yong", "우": "woo",
    "원": "won", "유": "yoo", "윤": "yoon", "율": "yul", "은": "eun", "인": "in", "자": "ja", "재": "jae",
    "정": "jung", "종": "jong", "주": "joo", "준": "jun", "지": "ji", "진": "jin", "찬": "chan", "창": "chang",
    "채": "chae", "철": "chul", "태": "tae", "택": "taek", "하": "ha", "한": "han", "향": "hyang", "현": "hyun",
    "혁": "hyuk", "혜": "hye", "호": "ho", "화": "hwa", "환": "hwan", "후": "hoo", "훈": "hoon", "희": "hee",
}

# Syllables people mishear at the counter or mistype (ㅐ/ㅔ, 희/히, 연/현…): the "similar syllable" duplicates.
SIMILAR_SYLLABLES: dict[str, str] = {
    "희": "히", "혜": "헤", "예": "에", "재": "제", "세": "새", "채": "체", "연": "현", "현": "연", "민": "빈",
    "빈": "민", "영": "용", "용": "영", "호": "후", "후": "호", "은": "운", "윤": "융", "진": "신", "숙": "속",
}

EMAIL_DOMAINS: list[tuple[str, float]] = [
    ("naver.com", 45), ("gmail.com", 30), ("daum.net", 10), ("kakao.com", 8), ("hanmail.net", 5), ("nate.com", 2),
]

# (시/도, 시/군/구) of customers' homes. The Seoul districts are core.regions' list; the others are a sample of the
# larger cities of each province.
OTHER_REGIONS: list[tuple[str, str]] = [
    ("인천광역시", "연수구"), ("인천광역시", "남동구"), ("인천광역시", "부평구"), ("대구광역시", "수성구"),
    ("대구광역시", "달서구"), ("광주광역시", "서구"), ("광주광역시", "북구"), ("대전광역시", "유성구"),
    ("대전광역시", "서구"), ("울산광역시", "남구"), ("세종특별자치시", "세종시"), ("강원특별자치도", "춘천시"),
    ("강원특별자치도", "강릉시"), ("강원특별자치도", "원주시"), ("충청북도", "청주시"), ("충청남도", "천안시"),
    ("충청남도", "아산시"), ("전북특별자치도", "전주시"), ("전라남도", "여수시"), ("전라남도", "순천시"),
    ("경상북도", "포항시"), ("경상북도", "경주시"), ("경상남도", "창원시"), ("경상남도", "김해시"),
    ("경상남도", "양산시"), ("제주특별자치도", "제주시"), ("제주특별자치도", "서귀포시"),
]
SEOUL = "서울특별시"
BUSAN = "부산광역시"
GYEONGGI = "경기도"

REGIONS: list[tuple[str, str]] = (
    [(SEOUL, d) for d in SEOUL_DISTRICTS] + [(BUSAN, d) for d in BUSAN_DISTRICTS]
    + [(GYEONGGI, c) for c in GYEONGGI_CITIES] + OTHER_REGIONS
)

# Where the customers of each unit live: share per province group, and districts drawn more often than others
# (the Seoul hotel's guests come disproportionately from 강남구, 서초구 and 송파구).
_REGION_MIX: dict[str, dict[str, float]] = {
    "seoul-hotel": {SEOUL: 0.60, GYEONGGI: 0.22, BUSAN: 0.03, "other": 0.15},
    "busan-hotel": {BUSAN: 0.50, SEOUL: 0.18, GYEONGGI: 0.07, "other": 0.25},
    "bakery": {SEOUL: 0.72, GYEONGGI: 0.23, BUSAN: 0.01, "other": 0.04},
    "restaurant": {SEOUL: 0.70, GYEONGGI: 0.21, BUSAN: 0.02, "other": 0.07},
}
_DISTRICT_BOOST: dict[str, dict[tuple[str, str], float]] = {
    "seoul-hotel": {(SEOUL, "강남구"): 9, (SEOUL, "서초구"): 7, (SEOUL, "송파구"): 6, (SEOUL, "용산구"): 3, (SEOUL, "마포구"): 2,
                    (GYEONGGI, "성남시"): 3, (GYEONGGI, "용인시"): 2},
    "busan-hotel": {(BUSAN, "해운대구"): 6, (BUSAN, "수영구"): 4, (BUSAN, "동래구"): 2.5, (BUSAN, "부산진구"): 2.5, (BUSAN, "남구"): 2,
                    (SEOUL, "강남구"): 3, (SEOUL, "서초구"): 2, ("경상남도", "창원시"): 4, ("경상남도", "김해시"): 3,
                    ("경상남도", "양산시"): 3, ("울산광역시", "남구"): 3, ("대구광역시", "수성구"): 2},
    "bakery": {(SEOUL, "서초구"): 8, (SEOUL, "강남구"): 6, (SEOUL, "동작구"): 3, (SEOUL, "송파구"): 3, (GYEONGGI, "과천시"): 3,
               (GYEONGGI, "성남시"): 2},
    "restaurant": {(SEOUL, "강남구"): 7, (SEOUL, "용산구"): 5, (SEOUL, "서초구"): 5, (SEOUL, "종로구"): 3, (SEOUL, "성동구"): 3,
                   (GYEONGGI, "성남시"): 2, (GYEONGGI, "하남시"): 2},
}


def region_weights(unit_code: str) -> list[float]:
    """Relative weight of each entry of REGIONS for customers registered at the unit."""
    mix, boost = _REGION_MIX[unit_code], _DISTRICT_BOOST[unit_code]
    groups = [sido if sido in (SEOUL, BUSAN, GYEONGGI) else "other" for sido, _ in REGIONS]
    raw = [boost.get(region, 1.0) for region in REGIONS]
    totals = {group: sum(w for w, g in zip(raw, groups) if g == group) for group in mix}
    return [mix[group] * w / totals[group] for w, group in zip(raw, groups)]


# First two digits of the postal codes of each province (국가기초구역 번호), to draw plausible 5-digit codes.
POSTAL_PREFIXES: dict[str, tuple[int, int]] = {
    SEOUL: (1, 8), BUSAN: (46, 49), "대구광역시": (41, 43), "인천광역시": (21, 23), "광주광역시": (61, 62),
    "대전광역시": (34, 35), "울산광역시": (44, 45), "세종특별자치시": (30, 30), GYEONGGI: (10, 18),
    "강원특별자치도": (24, 26), "충청북도": (27, 29), "충청남도": (31, 33), "전북특별자치도": (54, 56),
    "전라남도": (57, 59), "경상북도": (36, 40), "경상남도": (50, 53), "제주특별자치도": (63, 63),
}

ROAD_NAMES: list[str] = [
    "중앙로", "번영로", "문화로", "평화로", "시청로", "공원로", "역전로", "대학로", "희망로", "행복로", "새싹로", "은행나무길",
    "하늘길", "산책로", "강변로", "숲속길", "한빛로", "누리로", "달빛로", "햇살로",
]

# What staff write on the timeline by hand, by kind of business unit: (kind, text).
STAFF_NOTES: dict[str, list[tuple[str, str]]] = {
    "hotel": [
        ("note", "고층 객실 선호"), ("note", "금연 객실 요청"), ("note", "늦은 체크아웃 요청 이력"), ("note", "조식 알레르기: 갑각류"),
        ("note", "기념일 투숙 — 케이크 서비스 제공"), ("note", "엑스트라 베드 요청"), ("note", "주차 차량 2대 등록"),
        ("note", "베개 추가 요청(메모리폼)"), ("visit", "프런트 방문: 멤버십 혜택 문의"), ("visit", "컨시어지 상담: 주변 관광 안내"),
        ("visit", "연회장 상담 방문"), ("visit", "객실 패키지 상담"),
    ],
    "bakery": [
        ("note", "호두 알레르기"), ("note", "생크림 케이크 예약 선호"), ("note", "매주 토요일 식빵 예약"), ("note", "무가당 제품 문의"),
        ("note", "케이크 레터링: 이름 철자 확인 필요"), ("visit", "케이크 주문 상담"), ("visit", "단체 주문 문의 방문"),
        ("visit", "선물 세트 상담"),
    ],
    "restaurant": [
        ("note", "창가 자리 선호"), ("note", "와인 페어링 선호"), ("note", "갑각류 알레르기"), ("note", "기념일 레터링 요청"),
        ("note", "채식 코스 요청"), ("note", "유아 의자 필요"), ("visit", "돌잔치 단체 예약 상담"), ("visit", "상견례 룸 예약 상담"),
        ("visit", "와인 클래스 문의"),
    ],
}

# The text of the marketing consent the customer agreed to, by channel: kept as evidence (customers.Consent.evidence).
CONSENT_EVIDENCE: dict[str, str] = {
    "sms": "[한빛호텔 그룹 광고성 정보 수신 동의서 v3] 문자(SMS/LMS)로 할인·이벤트 등 광고성 정보를 받는 데 동의합니다.",
    "kakao": "[한빛호텔 그룹 광고성 정보 수신 동의서 v3] 카카오톡 알림톡·친구톡으로 광고성 정보를 받는 데 동의합니다.",
    "email": "[한빛호텔 그룹 광고성 정보 수신 동의서 v3] 이메일로 뉴스레터 및 광고성 정보를 받는 데 동의합니다.",
    "post": "[한빛호텔 그룹 광고성 정보 수신 동의서 v3] 우편으로 카탈로그 및 광고성 정보를 받는 데 동의합니다.",
    "phone": "[한빛호텔 그룹 광고성 정보 수신 동의서 v3] 전화로 상품 안내 및 광고성 정보를 받는 데 동의합니다.",
}
CONSENT_METHOD: dict[str, str] = {"store": "signed paper form", "web": "web checkbox"}
