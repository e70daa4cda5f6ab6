"""The demo business, 한빛호텔 그룹 (Hanbit Hotels): its business units, categories and products, and how each unit sells.

``ensure_reference_data()`` writes the units, categories and products (idempotently); the other constants describe
the behaviour the generator simulates (seasons, opening hours, sales channels, basket sizes, refund rates).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from dangol.core.models import BusinessUnit
from dangol.sales.models import Category, Product


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    price: int  # KRW, VAT included, as on the menu
    unit_cost: int
    weight: float  # how often it is chosen relative to the other products of the unit
    female_skew: float = 1.0  # > 1: chosen more by women (its weight is multiplied for women, divided for men)
    qty_min: int = 1  # a course is ordered for two or more
    qty_max: int = 3
    qty_p: float = 0.7  # quantity = qty_min - 1 + geometric(qty_p), capped at qty_max


@dataclass(frozen=True)
class CategorySpec:
    name: str
    products: tuple[ProductSpec, ...]
    # Multiplier of the products' weights by calendar month (Jan..Dec): Christmas cakes, summer stays.
    month_factor: tuple[float, ...] = (1.0,) * 12


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    kind: str
    categories: tuple[CategorySpec, ...]
    home_share: float  # share of the group's customers registered here
    visit_rate: float  # relative purchase frequency of its customers (a bakery regular comes weekly, a hotel guest not)
    month_factor: tuple[float, ...]  # relative sales by calendar month
    weekday_factor: tuple[float, ...]  # Mon..Sun
    special_days: tuple[tuple[int, int, float], ...]  # (month, day, factor): Christmas Eve, Valentine's Day…
    hour_weights: tuple[float, ...]  # 24 relative weights, hours in Asia/Seoul
    channels: tuple[tuple[str, float], ...]
    lines_per_order: tuple[float, float, float, float]  # probability of 1, 2, 3, 4 lines
    refund_rate: float


P = ProductSpec
_SUMMER_DEC = (0.9, 0.8, 0.9, 0.9, 1.0, 1.0, 1.3, 1.4, 1.0, 1.0, 0.9, 1.2)
_CAKE_SEASON = (1.0, 1.3, 0.9, 0.9, 1.5, 0.9, 0.8, 0.8, 1.0, 1.0, 1.0, 2.8)  # Valentine's, 어버이날 (May), Christmas
_ANNIVERSARY_SEASON = (1.0, 1.8, 1.0, 1.0, 1.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0)

_HOTEL_HOURS = (0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.5, 1.5, 2.0, 1.5, 1.5, 1.8, 2.0, 2.0, 3.5, 4.0, 3.5, 3.0, 3.0,
                3.0, 2.5, 2.0, 1.0, 0.5)
_BAKERY_HOURS = (0, 0, 0, 0, 0, 0, 0, 1.5, 3.5, 3.0, 2.0, 2.0, 2.5, 2.0, 2.0, 2.5, 3.0, 3.5, 3.0, 2.0, 1.2, 0.5, 0, 0)
_RESTAURANT_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.3, 2.0, 4.0, 3.0, 0.5, 0.2, 0.3, 2.0, 4.5, 5.0, 3.0, 1.0, 0, 0)

UNITS: tuple[UnitSpec, ...] = (
    UnitSpec(
        code="seoul-hotel", name="한빛호텔 서울", kind="hotel", home_share=0.28, visit_rate=0.55,
        categories=(
            CategorySpec("객실", (
                P("SH-RM-STD", "스탠다드 룸 1박", 189_000, 68_000, 3.0, 1.0, 1, 4, 0.6),
                P("SH-RM-DLX", "디럭스 룸 1박", 249_000, 87_000, 3.0, 1.0, 1, 4, 0.6),
                P("SH-RM-EXE", "이그제큐티브 룸 1박", 359_000, 118_000, 1.4, 0.8, 1, 4, 0.6),
                P("SH-RM-JST", "주니어 스위트 1박", 550_000, 176_000, 0.5, 1.0, 1, 3, 0.7),
                P("SH-RM-PST", "프레지덴셜 스위트 1박", 3_200_000, 800_000, 0.04, 1.0, 1, 2, 0.8),
            ), _SUMMER_DEC),
            CategorySpec("식음료", (
                P("SH-FB-BRK", "조식 뷔페", 49_000, 19_000, 2.5, 1.0, 1, 4, 0.45),
                P("SH-FB-DIN", "디너 뷔페 라 테라스", 139_000, 56_000, 1.4, 1.1, 2, 6, 0.5),
                P("SH-FB-TEA", "라운지 애프터눈 티 세트", 89_000, 31_000, 1.0, 1.8, 1, 3, 0.6),
                P("SH-FB-BAR", "바 칵테일", 28_000, 7_500, 1.0, 0.6, 1, 4, 0.5),
                P("SH-FB-RMS", "룸서비스 다이닝", 45_000, 18_000, 0.9, 1.0, 1, 3, 0.6),
            )),
            CategorySpec("스파", (
                P("SH-SP-ARO", "아로마 테라피 60분", 190_000, 60_000, 0.8, 2.2, 1, 2, 0.85),
                P("SH-SP-SIG", "시그니처 스파 90분", 280_000, 86_000, 0.5, 2.2, 1, 2, 0.85),
                P("SH-SP-CPL", "커플 스파 패키지", 480_000, 150_000, 0.2, 1.2, 1, 1, 1.0),
                P("SH-SP-SAU", "사우나·피트니스 1일권", 45_000, 9_000, 0.6, 0.7, 1, 2, 0.8),
            )),
        ),
        month_factor=(0.85, 0.8, 0.85, 0.9, 1.0, 1.0, 1.45, 1.6, 1.0, 1.05, 0.9, 1.5),
        weekday_factor=(0.8, 0.8, 0.85, 0.9, 1.3, 1.5, 0.9),
        special_days=((12, 24, 2.5), (12, 31, 2.5), (2, 14, 1.5)),
        hour_weights=_HOTEL_HOURS,
        channels=(("web", 0.35), ("app", 0.15), ("phone", 0.1), ("store", 0.4)),
        lines_per_order=(0.45, 0.30, 0.17, 0.08),
        refund_rate=0.03,
    ),
    UnitSpec(
        code="busan-hotel", name="한빛호텔 부산", kind="hotel", home_share=0.20, visit_rate=0.5,
        categories=(
            CategorySpec("객실", (
                P("BH-RM-CSD", "시티뷰 스탠다드 룸 1박", 159_000, 58_000, 2.5, 1.0, 1, 4, 0.6),
                P("BH-RM-ODX", "오션뷰 디럭스 룸 1박", 279_000, 95_000, 3.2, 1.0, 1, 4, 0.55),
                P("BH-RM-FAM", "패밀리 트윈 룸 1박", 319_000, 110_000, 1.2, 1.1, 1, 4, 0.6),
                P("BH-RM-OST", "오션 스위트 1박", 690_000, 210_000, 0.4, 1.0, 1, 3, 0.7),
            ), _SUMMER_DEC),
            CategorySpec("식음료", (
                P("BH-FB-BRK", "조식 뷔페", 45_000, 18_000, 2.5, 1.0, 1, 4, 0.45),
                P("BH-FB-SEA", "씨푸드 디너 뷔페", 125_000, 52_000, 1.6, 1.0, 2, 6, 0.5),
                P("BH-FB-ROF", "루프탑 바 칵테일", 26_000, 7_000, 1.0, 0.7, 1, 4, 0.5),
                P("BH-FB-CAF", "로비 카페 커피", 9_000, 2_000, 1.2, 1.3, 1, 4, 0.5),
            )),
            CategorySpec("스파", (
                P("BH-SP-THA", "해수 테라피 스파 60분", 170_000, 54_000, 0.7, 2.2, 1, 2, 0.85),
                P("BH-SP-PKG", "오션 스파 패키지 120분", 320_000, 98_000, 0.35, 2.0, 1, 2, 0.85),
                P("BH-SP-INF", "인피니티 풀 이용권", 50_000, 11_000, 1.0, 1.0, 1, 4, 0.5),
            ), (0.6, 0.6, 0.7, 0.8, 1.0, 1.2, 1.8, 1.9, 1.1, 0.9, 0.7, 0.8)),
        ),
        month_factor=(0.75, 0.75, 0.8, 0.85, 1.0, 1.1, 1.75, 1.95, 1.05, 1.0, 0.8, 1.3),
        weekday_factor=(0.75, 0.75, 0.8, 0.9, 1.35, 1.6, 0.9),
        special_days=((12, 31, 2.5), (8, 15, 1.5)),
        hour_weights=_HOTEL_HOURS,
        channels=(("web", 0.4), ("app", 0.2), ("phone", 0.1), ("store", 0.3)),
        lines_per_order=(0.45, 0.30, 0.17, 0.08),
        refund_rate=0.035,
    ),
    UnitSpec(
        code="bakery", name="한빛 베이커리", kind="bakery", home_share=0.37, visit_rate=2.2,
        categories=(
            CategorySpec("빵", (
                P("BK-BR-CRO", "크루아상", 4_500, 1_500, 3.0, 1.1),
                P("BK-BR-BAG", "바게트", 5_000, 1_700, 1.6, 0.9),
                P("BK-BR-SAL", "소금빵", 3_500, 1_100, 3.0, 1.0, 1, 6, 0.5),
                P("BK-BR-RED", "단팥빵", 3_200, 1_000, 1.5, 0.9),
                P("BK-BR-SIK", "우유식빵", 6_500, 2_200, 2.0, 1.0, 1, 2, 0.85),
                P("BK-BR-CAM", "깜빠뉴", 8_500, 2_800, 0.8, 0.9, 1, 2, 0.85),
                P("BK-BR-CRM", "크림빵", 3_800, 1_200, 1.4, 1.2),
                P("BK-BR-SCN", "스콘", 4_000, 1_300, 1.0, 1.4),
            )),
            CategorySpec("케이크", (
                P("BK-CK-FRS", "생크림 케이크 1호", 34_000, 12_000, 0.6, 1.6, 1, 1, 1.0),
                P("BK-CK-CHO", "초콜릿 케이크 1호", 36_000, 13_000, 0.5, 1.4, 1, 1, 1.0),
                P("BK-CK-STR", "딸기 생크림 케이크 2호", 46_000, 17_000, 0.4, 1.6, 1, 1, 1.0),
                P("BK-CK-CHZ", "치즈케이크 조각", 7_500, 2_600, 1.2, 1.8, 1, 4, 0.6),
                P("BK-CK-TIR", "티라미수", 8_000, 2_800, 0.9, 1.8, 1, 3, 0.7),
            ), _CAKE_SEASON),
            CategorySpec("커피", (
                P("BK-CF-AME", "아메리카노", 4_500, 900, 3.0, 0.9, 1, 4, 0.55),
                P("BK-CF-LAT", "카페라떼", 5_000, 1_200, 2.0, 1.2, 1, 4, 0.6),
                P("BK-CF-VAN", "바닐라 라떼", 5_500, 1_400, 0.9, 1.5, 1, 3, 0.7),
                P("BK-CF-MLK", "밀크티", 5_800, 1_500, 0.7, 1.6, 1, 3, 0.7),
            )),
        ),
        month_factor=(0.95, 1.0, 0.95, 0.95, 1.05, 0.95, 0.9, 0.9, 1.0, 1.0, 1.0, 1.35),
        weekday_factor=(0.85, 0.85, 0.85, 0.9, 1.05, 1.6, 1.5),
        special_days=((12, 24, 3.0), (12, 25, 2.0), (2, 14, 1.5), (5, 8, 1.8)),
        hour_weights=_BAKERY_HOURS,
        channels=(("store", 0.9), ("app", 0.1)),
        lines_per_order=(0.30, 0.35, 0.22, 0.13),
        refund_rate=0.006,
    ),
    UnitSpec(
        code="restaurant", name="한빛 레스토랑", kind="restaurant", home_share=0.15, visit_rate=0.8,
        categories=(
            CategorySpec("코스", (
                P("RS-CO-LUN", "런치 코스", 85_000, 34_000, 2.0, 1.2, 2, 6, 0.55),
                P("RS-CO-DIN", "디너 코스", 150_000, 60_000, 2.0, 1.0, 2, 6, 0.55),
                P("RS-CO-TST", "셰프 테이스팅 코스", 220_000, 88_000, 0.7, 0.9, 2, 4, 0.65),
                P("RS-CO-ANV", "기념일 코스", 180_000, 70_000, 0.6, 1.1, 2, 2, 1.0),
            ), _ANNIVERSARY_SEASON),
            CategorySpec("와인", (
                P("RS-WN-GLS", "하우스 와인 글라스", 18_000, 5_000, 1.5, 1.0, 1, 6, 0.45),
                P("RS-WN-RED", "레드 와인 보틀", 98_000, 40_000, 0.8, 0.6, 1, 2, 0.85),
                P("RS-WN-WHT", "화이트 와인 보틀", 88_000, 35_000, 0.6, 1.0, 1, 2, 0.85),
                P("RS-WN-CHP", "샴페인 보틀", 190_000, 80_000, 0.3, 1.0, 1, 2, 0.9),
                P("RS-WN-PAI", "와인 페어링 1인", 75_000, 30_000, 0.6, 0.8, 2, 4, 0.7),
            )),
        ),
        month_factor=(0.9, 1.1, 0.95, 0.95, 1.3, 1.0, 0.9, 0.9, 1.0, 1.05, 1.0, 1.45),
        weekday_factor=(0.7, 0.8, 0.85, 0.95, 1.45, 1.55, 1.0),
        special_days=((2, 14, 3.0), (12, 24, 3.5), (12, 25, 2.5), (5, 8, 2.0), (12, 31, 2.0)),
        hour_weights=_RESTAURANT_HOURS,
        channels=(("phone", 0.4), ("web", 0.25), ("store", 0.35)),
        lines_per_order=(0.40, 0.35, 0.18, 0.07),
        refund_rate=0.02,
    ),
)
UNIT_CODES = tuple(spec.code for spec in UNITS)


@dataclass(frozen=True)
class CatalogueProduct:
    """A product of the catalogue as stored: its database id, its unit's index in UNITS and its spec."""

    id: int
    unit_index: int
    category: CategorySpec
    spec: ProductSpec
    name: str
    price: int
    unit_cost: int


@dataclass(frozen=True)
class ReferenceData:
    unit_ids: tuple[int, ...]  # in the order of UNITS
    products: tuple[CatalogueProduct, ...]  # in catalogue order, grouped by unit


@transaction.atomic
def ensure_reference_data() -> ReferenceData:
    """Create (or find) the business units, categories and products of the demo business. Safe to run again.

    Existing rows are left as they are (a manager may have renamed a product or changed a price); the generator
    sells at the price stored in the database.
    """
    unit_ids = []
    products = []
    for unit_index, spec in enumerate(UNITS):
        unit, _ = BusinessUnit.objects.get_or_create(code=spec.code, defaults={"name": spec.name, "kind": spec.kind})
        unit_ids.append(unit.pk)
        for category_spec in spec.categories:
            category, _ = Category.objects.get_or_create(unit=unit, name=category_spec.name)
            for product_spec in category_spec.products:
                product, _ = Product.objects.get_or_create(
                    unit=unit, sku=product_spec.sku,
                    defaults={"category": category, "name": product_spec.name, "price": product_spec.price,
                              "unit_cost": product_spec.unit_cost},
                )
                products.append(CatalogueProduct(id=product.pk, unit_index=unit_index, category=category_spec,
                                                 spec=product_spec, name=product.name, price=product.price, unit_cost=product.unit_cost))
    return ReferenceData(unit_ids=tuple(unit_ids), products=tuple(products))
