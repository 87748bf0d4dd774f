"""The disk spool (SPEC section 5): batches in order, durable across reopening, leftovers of
a cut write removed, bounded by bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.spool import SUFFIX, Spool, SpoolError, SpoolFull


def drain(spool: Spool) -> list[bytes]:
    bodies = []
    while (oldest := spool.oldest()) is not None:
        path, body = oldest
        bodies.append(body)
        spool.remove(path)
    return bodies


def test_a_new_spool_is_empty_and_creates_its_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "a" / "b", max_bytes=1000)
    assert (tmp_path / "a" / "b").is_dir()
    assert (spool.batches, spool.bytes, bool(spool), spool.oldest()) == (0, 0, False, None)


def test_batches_come_back_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    bodies = [b"a f=1i 1", b"b f=2i 2\nb f=3i 3", b"", b"c f=4i 4"]
    for body in bodies:
        spool.append(body)
    assert (spool.batches, spool.bytes, bool(spool)) == (4, sum(map(len, bodies)), True)
    oldest = spool.oldest()
    assert oldest is not None and oldest[1] == bodies[0]
    assert spool.oldest() == oldest  # looking does not take it
    assert drain(spool) == bodies
    assert (spool.batches, spool.bytes, bool(spool)) == (0, 0, False)
    assert list(tmp_path.iterdir()) == []


def test_one_file_per_batch_with_rising_names(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    for n in range(12):
        spool.append(b"x" * n)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 12 and all(name.endswith(SUFFIX) for name in names)
    assert [(tmp_path / name).stat().st_size for name in names] == list(range(12))


def test_removing_keeps_the_order_of_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    for body in (b"1", b"22", b"333"):
        spool.append(body)
    oldest = spool.oldest()
    assert oldest is not None
    spool.remove(oldest[0])
    spool.append(b"4444")
    assert spool.bytes == 9
    assert drain(spool) == [b"22", b"333", b"4444"]


def test_a_reopened_spool_sees_the_batches_in_order(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=10_000)
    for body in (b"one", b"two", b"three"):
        first.append(body)
    oldest = first.oldest()
    assert oldest is not None
    first.remove(oldest[0])

    second = Spool(tmp_path, max_bytes=10_000)
    assert (second.batches, second.bytes) == (2, len(b"twothree"))
    second.append(b"four")  # numbered after the existing ones, so replayed after them
    third = Spool(tmp_path, max_bytes=10_000)
    assert drain(third) == [b"two", b"three", b"four"]


def test_leftover_tmp_files_are_removed_at_open(tmp_path: Path) -> None:
    Spool(tmp_path, max_bytes=10_000).append(b"kept")
    (tmp_path / f"{99:020d}.tmp").write_bytes(b"half a write")
    (tmp_path / "other.tmp").write_bytes(b"x")
    spool = Spool(tmp_path, max_bytes=10_000)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [SUFFIX]
    assert (spool.batches, spool.bytes) == (1, 4)
    assert drain(spool) == [b"kept"]


def test_the_spool_is_bounded_by_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10)
    spool.append(b"12345")
    spool.append(b"12345")  # exactly at the bound
    assert spool.bytes == 10
    assert spool.has_room(0) and not spool.has_room(1)
    with pytest.raises(SpoolFull) as info:
        spool.append(b"1")
    assert str(tmp_path) in str(info.value) and "10 of 10" in str(info.value)
    assert (spool.batches, spool.bytes) == (2, 10)
    assert len(list(tmp_path.iterdir())) == 2  # nothing half-written left behind
    oldest = spool.oldest()
    assert oldest is not None
    spool.remove(oldest[0])
    spool.append(b"123")
    assert spool.bytes == 8


def test_the_bound_counts_batches_found_at_open(tmp_path: Path) -> None:
    Spool(tmp_path, max_bytes=100).append(b"x" * 8)
    spool = Spool(tmp_path, max_bytes=10)
    assert spool.bytes == 8
    with pytest.raises(SpoolFull):
        spool.append(b"xxx")


def test_a_single_oversized_batch_is_taken_when_the_spool_is_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10)
    assert spool.has_room(1000)
    spool.append(b"y" * 1000)
    assert (spool.batches, spool.bytes) == (1, 1000)
    with pytest.raises(SpoolFull):
        spool.append(b"z")
    assert drain(spool) == [b"y" * 1000]


def test_an_unusable_directory_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError) as info:
        Spool(blocker / "spool", max_bytes=10)
    assert str(blocker / "spool") in str(info.value)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(st.binary(max_size=20), st.none(), st.just("reopen")),
                    max_size=25))
def test_the_spool_behaves_like_a_bounded_queue(tmp_path_factory: pytest.TempPathFactory,
                                                ops: list[bytes | str | None]) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool, model = Spool(directory, max_bytes=60), list[bytes]()
    for op in ops:
        if op == "reopen":
            spool = Spool(directory, max_bytes=60)
        elif op is None:
            oldest = spool.oldest()
            assert (oldest[1] if oldest else None) == (model[0] if model else None)
            if oldest:
                spool.remove(oldest[0])
                model.pop(0)
        else:
            assert isinstance(op, bytes)
            fits = not model or sum(map(len, model)) + len(op) <= 60
            if fits:
                spool.append(op)
                model.append(op)
            else:
                with pytest.raises(SpoolFull):
                    spool.append(op)
        assert (spool.batches, spool.bytes) == (len(model), sum(map(len, model)))
    assert drain(Spool(directory, max_bytes=60)) == model


def test_a_stray_file_in_the_spool_is_named_in_a_spool_error(tmp_path: Path) -> None:
    (tmp_path / f"notes{SUFFIX}").write_text("x")
    with pytest.raises(SpoolError) as info:
        Spool(tmp_path, max_bytes=100)
    assert "notes" in str(info.value)
