"""The bulk lane's backlog: messages waiting for the bulk drainer, one line per business."""
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta

ACTIVE_LINE = "#active"  # the markers' line: one item per business whose line may hold messages (seq = tenant_id)


class BacklogItem(Model):
    """A queued bulk message (line = tenant_id, seq = time_ns + message_id, so a line reads oldest first), or a
    line's marker (line = ACTIVE_LINE, seq = tenant_id, touched_at = the producer's last write)."""
    Meta = table_meta("send-backlog")
    line = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)
    message = UnicodeAttribute(null=True)  # the message as JSON; none on a marker
    touched_at = NumberAttribute(null=True)  # markers: time_ns of the last write to the line
    # No expiry: a message waits however long the account's rate makes its line (2M invitations at 14/s are 40 hours);
    # it leaves the backlog only when delivered or dead-lettered.
    ttl = NumberAttribute(null=True)
