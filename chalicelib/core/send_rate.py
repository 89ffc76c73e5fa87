"""The account's sending rate, shared by every sender process: one counter per channel per second in the counters
table (`send-rate#<channel>#<epoch second>`, ADD 1 per send). A bulk send takes a slot only while the second's
count is under the rate; an interactive send takes one in this second or, when bulk has filled it, reserves the next
second's first slots before bulk can reach them, so a reset code waits at most a second behind bulk mail and bulk
gets what interactive sends leave. (Interactive sends alone above the rate meet SES/SNS throttling and deliver()'s
retries.)

PORTAL_SES_RATE_PER_SECOND (14, SES's rate on leaving the sandbox) and PORTAL_SNS_RATE_PER_SECOND (20, SNS's
default SMS rate): the account's rates, whatever the number of sender processes."""
import os
import time

from chalicelib.core import config

RATE_SETTINGS = {"email": ("PORTAL_SES_RATE_PER_SECOND", "14"), "sms": ("PORTAL_SNS_RATE_PER_SECOND", "20")}
SLOT_TTL_SECONDS = 120  # a second's counter is only read during that second


def rate(channel: str) -> int:
    env, default = RATE_SETTINGS[channel]
    return max(1, int(float(os.environ.get(env, default))))


def slot_key(channel: str, second: int) -> str:
    return f"send-rate#{channel}#{second}"


def _add(channel: str, second: int, limit: int | None) -> bool:
    """One slot of that second; with `limit`, only while fewer than `limit` were taken (False: none left)."""
    from botocore.exceptions import ClientError
    values = {":one": {"N": "1"}, ":ttl": {"N": str(second + SLOT_TTL_SECONDS)}}
    condition = {}
    if limit is not None:
        values[":limit"] = {"N": str(limit)}
        condition = {"ConditionExpression": "attribute_not_exists(#c) OR #c < :limit"}
    try:
        config.client("dynamodb").update_item(
            TableName=config.table_name("counters"), Key={"counter_key": {"S": slot_key(channel, second)}},
            UpdateExpression="ADD #c :one SET #ttl = :ttl", ExpressionAttributeNames={"#c": "count", "#ttl": "ttl"},
            ExpressionAttributeValues=values, **condition)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def take_interactive(channel: str) -> None:
    """A slot in this second while there is one; else the first of the next second, taken now, ahead of any bulk
    send (bulk only takes a second's slots once it has begun): an interactive send waits at most a second, and
    together they stay within the rate."""
    now_ = time.time()
    second = int(now_)
    if _add(channel, second, rate(channel)):
        return
    _add(channel, second + 1, None)
    time.sleep(second + 1 - now_)


def take_bulk(channel: str) -> None:
    """Waits for a slot the interactive sends left in this or a later second."""
    while True:
        now_ = time.time()
        if _add(channel, int(now_), rate(channel)):
            return
        time.sleep(int(now_) + 1 - now_ + 0.001)  # the next second's slots


def taken(channel: str, second: int) -> int:
    """How many sends took a slot in that second (tests and the benchmark read this)."""
    item = config.client("dynamodb").get_item(TableName=config.table_name("counters"), ConsistentRead=True,
                                              Key={"counter_key": {"S": slot_key(channel, second)}}).get("Item")
    return int(item["count"]["N"]) if item else 0
