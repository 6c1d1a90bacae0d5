"""The LightSMS endpoints: authenticated requests in, results (rendered elsewhere) out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from lightsms.text import sms_parts
from simulator.checks import auth_error, parse_local, send_request_error, split_phones, valid_phone
from simulator.render import (
    AddStopReply,
    BalanceReply,
    EmptyReply,
    IncomingReply,
    PhoneOutcome,
    RequestError,
    Result,
    SendersReply,
    SendReply,
    StatusReply,
    StopEntryReply,
)
from simulator.state import Message, SimState

__all__ = ["ENDPOINTS", "Handled", "handle"]

SENDING_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
RANGE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
STOP_DESCRIPTION = "Added via API"


@dataclass(frozen=True)
class Handled:
    result: Result
    outcome: str  # for the requests log: accepted | partial | error:N | ok
    phones: int


Params = Mapping[str, str]
Endpoint = Callable[[Params, SimState, list[str]], Handled]


def handle(endpoint: str, params: Params, state: SimState) -> Handled:
    phones = split_phones(params.get("phone", ""))
    code = auth_error(params, state.account, now=state.now(), window=state.config.timestamp_window)
    if code is not None:
        return _error(code, phones)
    return ENDPOINTS[endpoint](params, state, phones)


def _error(code: int, phones: list[str]) -> Handled:
    return Handled(RequestError(code, phones), f"error:{code}", len(phones))


def _ok(result: Result, phones: list[str]) -> Handled:
    return Handled(result, "ok", len(phones))


def send(params: Params, state: SimState, phones: list[str]) -> Handled:
    code = send_request_error(params, state.account)
    if code is not None:
        return _error(code, phones)
    text, sender = params["text"], params["sender"]
    parts = max(sms_parts(text).parts, 1)
    cost = state.account.price * parts
    now = state.now()
    sending_time = params.get("sendingTime") or None
    scheduled = parse_local(sending_time, SENDING_TIME_FORMATS) if sending_time else None
    sending_epoch = state.epoch_of_local(scheduled) if scheduled else None
    start = max(now, sending_epoch or now)
    with state.lock:
        faults = state.faults
        phone_errors, outcomes = dict(faults.phone_errors), dict(faults.delivery_outcomes)
    results: dict[str, PhoneOutcome] = {}
    for phone in phones:
        if not valid_phone(phone):
            results[phone] = PhoneOutcome(16)
        elif state.stop_entry(phone) is not None:
            results[phone] = PhoneOutcome(13)
        elif phone in phone_errors:
            results[phone] = PhoneOutcome(phone_errors[phone])
        elif not state.charge(cost):
            results[phone] = PhoneOutcome(32)
        else:
            id_sms = state.new_sms_id()
            state.add_message(
                Message(
                    id_sms=id_sms,
                    phone=phone,
                    text=text,
                    sender=sender,
                    sending_time=sending_time,
                    sending_epoch=sending_epoch,
                    accepted_at=now,
                    deliver_at=start + state.config.delivery_seconds,
                    final_word=outcomes.get(phone),
                )
            )
            results[phone] = PhoneOutcome(0, id_sms, cost, parts)
    accepted = sum(1 for r in results.values() if r.code == 0)
    if accepted == len(results):
        outcome = "accepted"
    elif accepted:
        outcome = "partial"
    else:
        outcome = f"error:{next(iter(results.values())).code}"
    return Handled(SendReply(results), outcome, len(phones))


def status(params: Params, state: SimState, phones: list[str]) -> Handled:
    ids = [i.strip() for i in params.get("state", "").split(",") if i.strip()]
    if not ids:
        return _error(17, phones)
    found = state.statuses(ids)
    return _ok(StatusReply(found) if found else EmptyReply(), phones)


def balance(params: Params, state: SimState, phones: list[str]) -> Handled:
    with state.lock:
        reply = BalanceReply(state.account.balance, state.account.currency)
    return _ok(reply, phones)


def senders(params: Params, state: SimState, phones: list[str]) -> Handled:
    with state.lock:
        return _ok(SendersReply(dict(state.account.senders)), phones)


def find_on_stop(params: Params, state: SimState, phones: list[str]) -> Handled:
    if not phones:
        return _error(4, phones)
    entry = state.stop_entry(phones[0])
    return _ok(StopEntryReply(entry) if entry else EmptyReply(), phones)


def add2stop(params: Params, state: SimState, phones: list[str]) -> Handled:
    if not phones:
        return _error(4, phones)
    entry = state.add_stop(phones[0], STOP_DESCRIPTION)
    if entry is None:
        return _error(20, phones)
    return _ok(AddStopReply(entry.id), phones)


def incoming(params: Params, state: SimState, phones: list[str]) -> Handled:
    date, start_text, end_text = params.get("date", ""), params.get("from", ""), params.get("to", "")
    if date:
        day = parse_local(date, ("%Y-%m-%d",))
        if day is None:
            return _error(30, phones)
        start, end = day, day + timedelta(days=1, microseconds=-1)
    elif start_text and end_text:
        parsed_start = parse_local(start_text, RANGE_FORMATS)
        parsed_end = parse_local(end_text, RANGE_FORMATS)
        if parsed_start is None:
            return _error(28, phones)
        if parsed_end is None:
            return _error(29, phones)
        start, end = parsed_start, parsed_end
    elif end_text:
        return _error(28, phones)
    elif start_text:
        return _error(29, phones)
    else:
        return _error(30, phones)
    found = state.incoming_between(start, end)
    return _ok(IncomingReply(found) if found else EmptyReply(), phones)


ENDPOINTS: dict[str, Endpoint] = {
    "send": send,
    "status": status,
    "balance": balance,
    "senders": senders,
    "find_on_stop": find_on_stop,
    "add2stop": add2stop,
    "incoming": incoming,
}
