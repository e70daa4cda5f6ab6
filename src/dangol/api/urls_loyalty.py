"""API endpoints of the loyalty app (points, redemption, coupons), mounted under /api/v1/."""
urlpatterns: list = []
