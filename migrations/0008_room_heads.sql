-- A counter of the room's head (forward extremities and current state), bumped by every event
-- write with a compare-and-swap. A writer that built an event on a head it remembers (not
-- re-read under the room lock) writes only if the head is still that one: the one-statement
-- write of rooms/queue.ts. Writers under the room lock bump it too, so either kind sees the other.
ALTER TABLE rooms ADD COLUMN head_seq BIGINT NOT NULL DEFAULT 0;
