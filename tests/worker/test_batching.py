from core.message import Message
from core.states import State
from worker.batching import plan_batches


def msg(i: int, phone: str, text: str = "hi", sender: str = "LightSMS") -> Message:
    return Message(id=str(i), phone=phone, text=text, sender=sender, state=State.QUEUED)


def test_same_text_and_sender_share_a_batch_up_to_the_size():
    messages = [msg(i, f"3706000{i:04d}") for i in range(7)]
    batches = plan_batches(messages, size=3)
    assert [[m.id for m in b] for b in batches] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]


def test_different_text_or_sender_never_share_a_batch():
    messages = [msg(1, "37060000001"), msg(2, "37060000002", text="other"), msg(3, "37060000003", sender="Other")]
    assert [[m.id for m in b] for b in plan_batches(messages, size=50)] == [["1"], ["2"], ["3"]]


def test_a_phone_never_appears_twice_in_one_batch():
    messages = [msg(1, "37060000001"), msg(2, "37060000001"), msg(3, "37060000002")]
    batches = plan_batches(messages, size=50)
    assert [[m.id for m in b] for b in batches] == [["1", "3"], ["2"]]
    for batch in batches:
        assert len({m.phone for m in batch}) == len(batch)
