import json

from tests.ops.conftest import dangol, query

FINGERPRINT = (
    "import json, hashlib\n"
    "from dangol.customers.models import Customer, ContactPoint\nfrom dangol.sales.models import Order\n"
    "h = hashlib.sha256()\n"
    "for row in Customer.objects.order_by('id').values_list('id', 'name', 'stage'): h.update(repr(row).encode())\n"
    "for row in ContactPoint.objects.order_by('id').values_list('id', 'value'): h.update(repr(row).encode())\n"
    "for row in Order.objects.order_by('id').values_list('id', 'total', 'customer_id'): h.update(repr(row).encode())\n"
    "print(json.dumps({'customers': Customer.objects.count(), 'orders': Order.objects.count(), 'hash': h.hexdigest()}))"
)


def test_backup_and_restore_round_trip_the_demo_data_exactly(scratch_env, tmp_path):
    dangol(scratch_env, "demo", "--no-serve", "--customers", "150")
    before = json.loads(query(scratch_env, FINGERPRINT))
    assert before["customers"] >= 150 and before["orders"] > 0
    backup_file = tmp_path / "dangol.backup"
    assert "backup written" in dangol(scratch_env, "backup", str(backup_file)).stdout
    # Damage the data (orders can no longer simply be deleted: the points ledger protects them).
    query(scratch_env, "from dangol.sales.models import Order\nfrom dangol.customers.models import Customer, ContactPoint\n"
                       "Order.objects.update(total=0); ContactPoint.objects.all().delete(); Customer.objects.update(name='lost')")
    damaged = json.loads(query(scratch_env, FINGERPRINT))
    assert damaged["hash"] != before["hash"] and damaged["orders"] == before["orders"]
    dangol(scratch_env, "restore", "--yes", str(backup_file))
    assert json.loads(query(scratch_env, FINGERPRINT)) == before


def test_restore_of_a_missing_or_bad_file_changes_nothing(scratch_env, tmp_path):
    dangol(scratch_env, "demo", "--no-serve", "--customers", "20")
    before = query(scratch_env, FINGERPRINT)
    missing = dangol(scratch_env, "restore", "--yes", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"this is not a backup")
    bad = dangol(scratch_env, "restore", "--yes", str(junk), check=False)
    assert bad.returncode != 0
    assert query(scratch_env, FINGERPRINT) == before
