"""Review pages of data cleansing: the duplicate queue, merges and their undo, flagged imported orders."""
urlpatterns: list = []
