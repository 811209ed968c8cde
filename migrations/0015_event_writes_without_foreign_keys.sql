-- The event tables written at every send lose their foreign keys. Each key cost a trigger per
-- inserted row, and each check locked the row it found (FOR KEY SHARE writes the lock into the
-- row, so the room's row and both state snapshots of every new event were dirtied and
-- WAL-logged again). EXPLAIN ANALYZE of a batch of nine messages: 0.15-0.23 ms of its 1.7 ms
-- in these triggers. bench/rooms.ts, three runs each, alternated: sequential sends 685-722/s
-- with the keys, 704-780/s without; ten clients in one room 1,185-1,471/s with, 1,371-1,494/s
-- without.
--
-- What they checked holds by construction: the one statement that writes an event
-- (rooms/store/events.ts) inserts its nid and the snapshots it refers to in the same statement
-- or before it, under the room's lock; rooms, nids, state keys and snapshots are never deleted.
-- Synapse and Dendrite keep no foreign keys on their event tables either. The keys of tables
-- written at state changes only (snapshots, memberships, aliases) stay.
ALTER TABLE events
  DROP CONSTRAINT events_event_nid_fkey,
  DROP CONSTRAINT events_room_nid_fkey,
  DROP CONSTRAINT events_state_key_nid_fkey,
  DROP CONSTRAINT events_state_before_fkey,
  DROP CONSTRAINT events_state_after_fkey;
ALTER TABLE forward_extremities DROP CONSTRAINT forward_extremities_room_nid_fkey;
