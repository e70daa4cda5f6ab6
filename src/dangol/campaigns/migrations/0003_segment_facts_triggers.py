"""Database triggers that mark a customer's segment facts for refresh in the same transaction as the change.

On PostgreSQL they are statement-level triggers with transition tables, so a COPY of a million orders marks its
customers in one set-based INSERT rather than a million times; on SQLite (no statement-level triggers) they are
row-level. Every customer already there is marked, so the first refresh builds the whole table.
"""
from django.db import migrations

# (table, the column holding the customer's id)
SOURCES = [
    ("customers_customer", "id"),
    ("customers_address", "customer_id"),
    ("customers_anniversary", "customer_id"),
    ("customers_membership", "customer_id"),
    ("sales_order", "customer_id"),
    ("analytics_customermetrics", "customer_id"),
]


def _postgres_functions():
    out = []
    for column in ("id", "customer_id"):
        for name, body in (
            ("new", f"SELECT {column} FROM new_rows"),
            ("old", f"SELECT {column} FROM old_rows"),
            ("both", f"SELECT {column} FROM new_rows UNION SELECT {column} FROM old_rows"),
        ):
            out.append(f"""
                CREATE OR REPLACE FUNCTION campaigns_facts_mark_{name}_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO campaigns_factsdirty (customer_id)
                    SELECT DISTINCT c FROM ({body}) AS changed (c) WHERE c IS NOT NULL ORDER BY c
                    ON CONFLICT DO NOTHING;
                    RETURN NULL;
                END $$""")
    out.append("""
        CREATE OR REPLACE FUNCTION campaigns_facts_mark_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO campaigns_factsdirty (customer_id) SELECT customer_id FROM campaigns_customerfacts
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$""")
    return out


def install(apps, schema_editor):
    connection = schema_editor.connection
    statements = []
    if connection.vendor == "postgresql":
        statements += _postgres_functions()
        for table, column in SOURCES:
            statements += [
                f"CREATE TRIGGER campaigns_facts_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                f"FOR EACH STATEMENT EXECUTE FUNCTION campaigns_facts_mark_new_{column}()",
                f"CREATE TRIGGER campaigns_facts_upd AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows "
                f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION campaigns_facts_mark_both_{column}()",
                f"CREATE TRIGGER campaigns_facts_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                f"FOR EACH STATEMENT EXECUTE FUNCTION campaigns_facts_mark_old_{column}()",
            ]
        statements.append("CREATE TRIGGER campaigns_facts_trunc AFTER TRUNCATE ON analytics_customermetrics "
                          "FOR EACH STATEMENT EXECUTE FUNCTION campaigns_facts_mark_all()")
        statements.append("INSERT INTO campaigns_factsdirty (customer_id) SELECT id FROM customers_customer "
                          "ON CONFLICT DO NOTHING")
    else:
        for table, column in SOURCES:
            mark = "INSERT OR IGNORE INTO campaigns_factsdirty (customer_id) SELECT {row}.{column} WHERE {row}.{column} IS NOT NULL;"
            statements += [
                f"CREATE TRIGGER campaigns_facts_{table}_ins AFTER INSERT ON {table} BEGIN "
                + mark.format(row="NEW", column=column) + " END",
                f"CREATE TRIGGER campaigns_facts_{table}_upd AFTER UPDATE ON {table} BEGIN "
                + mark.format(row="OLD", column=column) + " " + mark.format(row="NEW", column=column) + " END",
                f"CREATE TRIGGER campaigns_facts_{table}_del AFTER DELETE ON {table} BEGIN "
                + mark.format(row="OLD", column=column) + " END",
            ]
        statements.append("INSERT OR IGNORE INTO campaigns_factsdirty (customer_id) SELECT id FROM customers_customer")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def uninstall(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table, _column in SOURCES:
                for suffix in ("ins", "upd", "del"):
                    cursor.execute(f"DROP TRIGGER IF EXISTS campaigns_facts_{suffix} ON {table}")
            cursor.execute("DROP TRIGGER IF EXISTS campaigns_facts_trunc ON analytics_customermetrics")
            for column in ("id", "customer_id"):
                for name in ("new", "old", "both"):
                    cursor.execute(f"DROP FUNCTION IF EXISTS campaigns_facts_mark_{name}_{column}()")
            cursor.execute("DROP FUNCTION IF EXISTS campaigns_facts_mark_all()")
        else:
            for table, _column in SOURCES:
                for suffix in ("ins", "upd", "del"):
                    cursor.execute(f"DROP TRIGGER IF EXISTS campaigns_facts_{table}_{suffix}")


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_segment_facts"),
        ("customers", "0006_stage_set_by_staff"),
        ("sales", "0003_order_needs_review_and_more"),
        ("analytics", "0001_initial"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
