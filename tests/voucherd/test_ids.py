"""Ids: the Voucherify shape, unique, and never shared with a forked child (server processes are forks)."""

from __future__ import annotations

import os
import re

from voucherd.platform.ids import new_id, new_request_id


def test_ids_have_the_voucherify_shape_and_do_not_repeat() -> None:
    ids = [new_id("r") for _ in range(5_000)]  # past several refills of the entropy buffer
    assert all(re.fullmatch(r"r_[0-9a-f]{20}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"v-[0-9a-f]{18}", new_request_id())


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    new_id("r")  # the parent now holds unread random bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running the test session's teardown
        os.close(read_end)
        os.write(write_end, " ".join(new_id("r") for _ in range(50)).encode())
        os._exit(0)
    os.close(write_end)
    parents = {new_id("r") for _ in range(50)}
    with os.fdopen(read_end, "rb") as pipe:
        childs = set(pipe.read().decode().split())
    os.waitpid(pid, 0)
    assert len(childs) == 50
    assert not parents & childs
