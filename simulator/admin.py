"""The /_sim/ admin API: inspect what the simulator saw, inject inbound SMS, statuses and faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simulator.state import DATE_FORMAT, IncomingSms, SimState

__all__ = ["AdminError", "handle_admin"]

Reply = tuple[int, dict[str, Any]]


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle_admin(method: str, name: str, body: bytes, state: SimState) -> Reply:
    """(HTTP status, JSON object) for `method` on /_sim/<name>."""
    routes = _GET if method == "GET" else _POST if method == "POST" else {}
    route = routes.get(name)
    if route is None:
        known = name in _GET or name in _POST
        return (405, {"error": "method not allowed"}) if known else (404, {"error": "no such admin endpoint"})
    try:
        return 200, route(state, _json_object(body) if method == "POST" else {})
    except AdminError as exc:
        return exc.status, {"error": str(exc)}
    except (ValueError, TypeError, KeyError) as exc:
        return 400, {"error": str(exc) or type(exc).__name__}


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise AdminError(400, "body is not JSON") from None
    if not isinstance(data, dict):
        raise AdminError(400, "body must be a JSON object")
    return data


def _health(state: SimState, _: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _messages(state: SimState, _: dict[str, Any]) -> dict[str, Any]:
    return {"messages": state.messages_json()}


def _requests(state: SimState, _: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        records = list(state.requests)
    return {
        "requests": [
            {"time": r.time, "endpoint": r.endpoint, "outcome": r.outcome, "phones": r.phones} for r in records
        ]
    }


def _faults(state: SimState, _: dict[str, Any]) -> dict[str, Any]:
    return {"faults": state.faults_json()}


def _set_faults(state: SimState, data: dict[str, Any]) -> dict[str, Any]:
    state.update_faults(data)
    return {"faults": state.faults_json()}


def _add_incoming(state: SimState, data: dict[str, Any]) -> dict[str, Any]:
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise AdminError(400, "messages must be a list")
    built = []
    for item in messages:
        if not isinstance(item, dict) or "sender" not in item or "text" not in item:
            raise AdminError(400, "each message needs sender and text")
        date = str(item.get("date") or state.local_text(state.now()))
        try:
            datetime.strptime(date, DATE_FORMAT)
        except ValueError:
            raise AdminError(400, "date must be YYYY-MM-DD HH:MM:SS") from None
        built.append(
            IncomingSms(
                id=state.new_small_id(),
                date=date,
                sender=str(item["sender"]),
                phone=str(item.get("phone", "")),
                prefix=str(item.get("prefix", "")),
                text=str(item["text"]),
            )
        )
    for sms in built:
        state.add_incoming(sms)
    return {"ids": [sms.id for sms in built]}


def _set_status(state: SimState, data: dict[str, Any]) -> dict[str, Any]:
    statuses = data.get("statuses")
    if not isinstance(statuses, dict):
        raise AdminError(400, "statuses must be an object of id_sms -> word")
    return {"updated": state.set_statuses(statuses)}


def _reset(state: SimState, _: dict[str, Any]) -> dict[str, Any]:
    state.reset()
    return {"ok": True}


Route = Callable[[SimState, dict[str, Any]], dict[str, Any]]
_GET: dict[str, Route] = {"health": _health, "messages": _messages, "requests": _requests, "faults": _faults}
_POST: dict[str, Route] = {
    "incoming": _add_incoming,
    "status": _set_status,
    "faults": _set_faults,
    "reset": _reset,
}
