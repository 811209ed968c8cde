// Refusals shared by the rooms modules.
import { forbidden } from '../http/errors.js';

/** One answer for a room that does not exist and one the caller may not see or act in. */
export const notInRoom = (roomId: string) => forbidden(`You are not in room ${roomId}, or it does not exist`);
