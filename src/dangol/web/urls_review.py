"""Review pages of data cleansing: the duplicate queue, merges and their undo, flagged imported orders."""
from django.urls import path

from . import views_review as views

urlpatterns: list = [
    path("review/duplicates/", views.duplicate_queue, name="review_duplicates"),
    path("review/duplicates/<int:candidate_id>/", views.candidate_detail, name="review_candidate"),
    path("review/duplicates/<int:candidate_id>/merge/", views.candidate_merge, name="review_candidate_merge"),
    path("review/duplicates/<int:candidate_id>/not-same/", views.candidate_not_same, name="review_candidate_not_same"),
    path("review/merges/", views.merge_list, name="review_merges"),
    path("review/merges/<int:merge_id>/undo/", views.merge_undo, name="review_merge_undo"),
    path("review/orders/", views.flagged_orders, name="review_orders"),
    path("review/orders/flags/<int:flag_id>/accept/", views.flag_accept, name="review_flag_accept"),
    path("review/orders/flags/<int:flag_id>/reject/", views.flag_reject, name="review_flag_reject"),
]
