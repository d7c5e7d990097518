"""Five submissions at once over the API of a real server (the embedded worker prepares
them while the others upload): none is lost, each ends held with every row accounted
for, and another agency sees none of them. Correctness only; bench/bench_service.py
measures the same with 20 and page loads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bench.served import Served, client, request_chunks, settle, submit, unaccounted

ROWS = 8


def test_five_concurrent_submissions_all_end_held_with_every_row(server: Served) -> None:
    batch_ids = [f"CONC-{i}" for i in range(5)]
    bodies = request_chunks(server.sample / "request.csv", len(batch_ids), ROWS)
    sessions = [client(server, "submitter") for _ in batch_ids]
    officer, other_agency = client(server, "officer"), client(server, "submitter2")
    accepted: list[str] = []
    try:
        with ThreadPoolExecutor(len(batch_ids)) as pool:
            sent = [pool.submit(submit, session, batch_id, f"Agent {i}", body, accepted)
                    for i, (session, batch_id, body) in enumerate(zip(sessions, batch_ids,
                                                                      bodies, strict=True))]
            codes = [future.result()[1] for future in sent]
        assert codes == [202] * len(batch_ids)
        assert sorted(accepted) == batch_ids
        views = settle(officer, batch_ids, seconds=300)
        assert unaccounted(views, ROWS) == []
        listed = {b["batch_id"] for b in sessions[0].get("/api/batches").json()}
        assert set(batch_ids) <= listed
        assert not {b["batch_id"] for b in other_agency.get("/api/batches").json()} & listed
        assert other_agency.get(f"/api/batches/{batch_ids[0]}").status_code == 404
    finally:
        for session in (*sessions, officer, other_agency):
            session.close()
