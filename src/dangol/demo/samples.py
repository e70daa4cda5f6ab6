"""Sample export files of the demo business's units, to try the import (and used by its tests).

What a real group hands over: the bakery's POS exports its members in CP949 with Korean headers and the usual
mistakes (a phone number with digits missing, 30 February, a blank name, an email without its domain, "maybe" as the
lunar flag and "?" in a consent column, the same member twice); the Seoul hotel's PMS exports an XLSX with English
headers. Some people are members of both, written differently (a space in the name, a mistyped syllable, the phone
number in another format, an email in capitals, a mistyped phone digit with another address), so the import links
the obvious ones, record linkage merges the sure ones and leaves a few for a manager to review. The order files reference the members by their unit's number and include outliers (a negative quantity on a
sale, a zero and an extreme price, a date in the future), a refund, and a line with an unknown product code.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import people

BAKERY_HEADERS = ["회원번호", "성명", "핸드폰", "이메일", "생년월일", "음력", "주소", "가입일", "SMS수신동의", "이메일수신동의", "야간수신동의"]
HOTEL_HEADERS = ["Member No", "Name", "Mobile", "Email", "Birthday", "Lunar", "Address", "Joined", "SMS consent",
                 "Email consent", "Kakao consent"]
ORDER_HEADERS = ["영수증번호", "회원번호", "거래일시", "상품코드", "수량", "단가", "구분", "원영수증번호"]
DISTRICTS = [("서울", "강남구", "테헤란로"), ("서울", "마포구", "월드컵로"), ("서울", "송파구", "올림픽로"),
             ("부산", "해운대구", "해운대로"), ("경기", "성남시 분당구", "판교역로"), ("서울특별시", "종로구", "종로")]


@dataclass
class Person:
    name: str
    phone_digits: int  # the 8 digits after 010
    email: str
    birth: dt.date
    lunar: bool
    address: str


def _people(count: int, rng: np.random.Generator) -> list[Person]:
    surnames = [s for s, _w, _r in people.SURNAMES[:30]]
    roman_surname = {s: r for s, _w, r in people.SURNAMES}
    first, second = people.GIVEN_POOLS[("F", "modern")]
    first_m, second_m = people.GIVEN_POOLS[("M", "modern")]
    result, seen_phones = [], set()
    while len(result) < count:
        surname = surnames[int(rng.integers(len(surnames)))]
        pool_a, pool_b = (first, second) if rng.random() < 0.5 else (first_m, second_m)
        given = pool_a[int(rng.integers(len(pool_a)))] + pool_b[int(rng.integers(len(pool_b)))]
        digits = int(rng.integers(20_000_000, 59_690_000))
        if digits in seen_phones:
            continue
        seen_phones.add(digits)
        roman = "".join(people.ROMANISED_SYLLABLES.get(ch, "x") for ch in given)
        email = f"{roman}.{roman_surname[surname]}{len(result)}@{('naver.com', 'gmail.com', 'daum.net')[len(result) % 3]}"
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 45)))
        sido, district, road = DISTRICTS[int(rng.integers(len(DISTRICTS)))]
        result.append(Person(surname + given, digits, email, birth, bool(rng.random() < 0.1),
                             f"{sido} {district} {road} {int(rng.integers(1, 300))}"))
    return result


def _phone(digits: int, style: int) -> str:
    text = f"010{digits:08d}"
    return [f"{text[:3]}-{text[3:7]}-{text[7:]}", text, f"+82 10 {text[3:7]} {text[7:]}", text[1:]][style % 4]


def _similar(name: str) -> str:
    for index, ch in enumerate(name[1:], start=1):
        if ch in people.SIMILAR_SYLLABLES:
            return name[:index] + people.SIMILAR_SYLLABLES[ch] + name[index + 1:]
    return name[0] + " " + name[1:]


def write_sample_files(directory: str | Path, *, persons: int = 120, seed: int = 7, today: dt.date | None = None) -> dict[str, Path]:
    """Write the sample files into ``directory``; returns {name: path}. Deterministic for a seed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    today = today or dt.date.today()
    rng = np.random.default_rng(seed)
    crowd = _people(persons, rng)
    bakery_people = crowd[: persons * 2 // 3]
    hotel_people = crowd[persons // 3:]  # the middle third is a member of both
    both = crowd[persons // 3: persons * 2 // 3]

    rows = []
    for index, person in enumerate(bakery_people):
        sms = ["Y", "동의", "N", "미동의", "O", "X"][index % 6]
        night = ("Y" if index % 2 == 0 else "N") if sms in ("Y", "동의", "O") else ""
        rows.append([f"B{1000 + index}", person.name, _phone(person.phone_digits, index), person.email,
                     person.birth.strftime(["%Y-%m-%d", "%Y.%m.%d", "%Y%m%d", "%y/%m/%d"][index % 4]),
                     "음력" if person.lunar else "양력", person.address,
                     (today - dt.timedelta(days=30 + index * 3)).isoformat(),
                     sms, ["1", "0"][index % 2], night])
    bad = [
        ["B9001", "", "010-2000-3000", "", "", "", "", "", "Y", "", ""],                       # no name
        ["B9002", "강하늘", "010-123-45", "", "1990-02-30", "", "", "", "", "", ""],              # bad phone and date
        ["B9003", "윤보라", "010-2000-3100", "yoon@", "", "maybe", "", "", "Y", "?", ""],        # bad email and flags
        list(rows[1]),                                                                           # the same member twice
    ]
    bakery_rows = rows + bad
    path_bakery = directory / "bakery-customers-cp949.csv"
    _write_csv(path_bakery, BAKERY_HEADERS, bakery_rows, encoding="cp949")

    hotel_rows = []
    for index, person in enumerate(hotel_people):
        name, phone, email = person.name, _phone(person.phone_digits, index + 1), person.email
        birth, address = person.birth.isoformat(), person.address
        if person in both:
            variant = index % 4
            if variant == 0 and index % 8 == 4:
                # One digit of the phone mistyped, no email, no birthday, another district: the name and a nearly
                # equal number say it may be the same person, the address says otherwise — for a manager to decide.
                email, birth, address = "", "", f"부산 수영구 광안해변로 {100 + index}"
                phone = _phone(person.phone_digits + (1 if person.phone_digits % 10 < 9 else -1), 0)
            elif variant == 1:
                name = name[0] + " " + name[1:]          # a space between surname and given name
            elif variant == 2:
                name, phone = _similar(name), _phone(person.phone_digits, 2)  # misheard syllable, same phone
            elif variant == 3:
                email, phone = email.upper(), ""         # no phone, email typed in capitals
        hotel_rows.append([f"SH-{5000 + index}", name, phone, email, birth, "Y" if person.lunar else "N",
                           address, (today - dt.timedelta(days=400 + index)).isoformat(), ["Y", "N"][index % 2],
                           ["N", "Y"][index % 2], ["Y", "N", ""][index % 3]])
    path_hotel = directory / "seoul-hotel-customers.xlsx"
    _write_xlsx(path_hotel, HOTEL_HEADERS, hotel_rows)

    path_bakery_orders = directory / "bakery-orders.csv"
    _write_csv(path_bakery_orders, ORDER_HEADERS, _orders(rng, "B", 1000, len(bakery_people), "BK", today,
                                                           ["BK-BR-CRO", "BK-BR-BAG", "BK-BR-SAL", "BK-BR-RED"]), encoding="utf-8-sig")
    path_hotel_orders = directory / "seoul-hotel-orders.csv"
    _write_csv(path_hotel_orders, ORDER_HEADERS, _orders(rng, "SH-", 5000, len(hotel_people), "SH", today,
                                                          ["SH-RM-STD", "SH-RM-DLX", "SH-FB-BRK", "SH-SP-ARO"]), encoding="utf-8")
    return {"bakery_customers": path_bakery, "hotel_customers": path_hotel, "bakery_orders": path_bakery_orders,
            "hotel_orders": path_hotel_orders}


def _orders(rng, prefix: str, first_id: int, members: int, receipt: str, today: dt.date, skus: list[str]) -> list[list[str]]:
    rows = []
    for number in range(members * 2):
        member = f"{prefix}{first_id + int(rng.integers(members))}"  # every sample member row is valid
        at = dt.datetime.combine(today - dt.timedelta(days=int(rng.integers(1, 700))), dt.time(int(rng.integers(9, 21)), 0))
        for line in range(1 + int(rng.integers(0, 3))):
            rows.append([f"{receipt}-{number:05d}", member, at.strftime("%Y-%m-%d %H:%M"), skus[(number + line) % len(skus)],
                         str(1 + int(rng.integers(0, 3))), "", "판매", ""])
    sold = rows[0]
    when = (today - dt.timedelta(days=1)).isoformat()
    rows += [
        [f"{receipt}-R0001", sold[1], when, sold[3], sold[4], "", "반품", sold[0]],       # a refund of the first sale
        [f"{receipt}-X0001", sold[1], when, skus[0], "-2", "", "판매", ""],                # negative quantity, not a refund
        [f"{receipt}-X0002", sold[1], when, skus[1], "1", "0", "판매", ""],                # zero price
        [f"{receipt}-X0003", sold[1], when, skus[0], "1", "99000000", "판매", ""],         # extreme price
        [f"{receipt}-X0004", sold[1], (today + dt.timedelta(days=40)).isoformat(), skus[0], "1", "", "판매", ""],  # future
        [f"{receipt}-E0001", sold[1], when, "NO-SUCH-SKU", "1", "", "판매", ""],           # unknown product: rejected
    ]
    return rows


def _write_csv(path: Path, headers: list[str], rows: list[list[str]], *, encoding: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # as Excel writes it
    writer.writerow(headers)
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))


def _write_xlsx(path: Path, headers: list[str], rows: list[list[str]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Members"
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
