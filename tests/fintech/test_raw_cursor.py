"""fintech.db's cursors: raw_cursor hands the thread's spare psycopg cursor from one statement to the next (a new
cursor costs a third of a small statement's client time), yet a raw_cursor opened inside another gets its own, a
connection Django replaced gets a new one, and the own connection answers rows only for statements that return
them."""

from __future__ import annotations

import django.db
import psycopg
import pytest
from django.db import connection

from fintech.db import own_connection_execute, raw_cursor

pytestmark = pytest.mark.django_db


def test_one_cursor_serves_statement_after_statement():
    with raw_cursor() as first:
        first.execute("SELECT 1")
        assert first.fetchone() == (1,)
    with raw_cursor() as second:
        second.execute("SELECT 2")
        assert second.fetchone() == (2,)
    assert second is first


def test_a_raw_cursor_inside_another_gets_its_own_and_leaves_the_outer_results_alone():
    with raw_cursor() as outer:
        outer.execute("SELECT generate_series(1, 3)")
        assert outer.fetchone() == (1,)
        with raw_cursor() as inner:
            assert inner is not outer
            inner.execute("SELECT 42")
            assert inner.fetchone() == (42,)
        assert outer.fetchall() == [(2,), (3,)]
    with raw_cursor() as after:
        after.execute("SELECT 7")
        assert after.fetchone() == (7,)


@pytest.mark.django_db(transaction=True)
def test_a_statement_after_the_connection_was_closed_runs_on_the_new_one():
    with raw_cursor() as before:
        before.execute("SELECT pg_backend_pid()")
        (old_pid,) = before.fetchone()
    connection.close()
    with raw_cursor() as cursor:
        assert cursor is not before
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    assert new_pid != old_pid


@pytest.mark.django_db(transaction=True)
def test_a_failed_statement_raises_djangos_error_and_leaves_the_spare_cursor_usable():
    with pytest.raises(django.db.DataError) as raised, raw_cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    assert isinstance(raised.value.__cause__, psycopg.errors.DivisionByZero)
    with raw_cursor() as again:
        again.execute("SELECT 3")
        assert again.fetchone() == (3,)


def _select_then_fail() -> object:
    with raw_cursor() as cursor:
        cursor.execute("SELECT 1")
        raise KeyError(cursor)


def test_an_error_of_the_caller_goes_through_unchanged():
    with pytest.raises(KeyError) as raised:
        _select_then_fail()
    with raw_cursor() as again:
        assert again is raised.value.args[0]


@pytest.mark.django_db(transaction=True)
def test_the_own_connection_answers_rows_only_for_statements_that_return_them():
    assert own_connection_execute("SELECT 5, 'five'", []) == [(5, "five")]
    assert own_connection_execute("SELECT 1 WHERE false", []) == []
    assert own_connection_execute("SET application_name = 'fintech-own'", []) == []
