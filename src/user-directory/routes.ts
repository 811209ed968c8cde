// POST /user_directory/search. Thin: validate, call once. Guests may not search (not on the
// spec's list of guest endpoints; Synapse refuses them too).
import type { RouteTable } from '../http/routes.js';
import { requester } from '../http/types.js';
import { compileBody } from '../http/validate.js';
import type { UserDirectoryService } from './service.js';

const searchBody = compileBody<{ search_term: string; limit?: number }>(
  {
    type: 'object',
    required: ['search_term'],
    properties: {
      // Longer than any user id or display name could usefully match.
      search_term: { type: 'string', maxLength: 512 },
      limit: { type: 'integer', minimum: 0 },
    },
  },
  { missingErrcode: 'M_MISSING_PARAM' },
);

export function registerUserDirectoryRoutes(routes: RouteTable, directory: UserDirectoryService): void {
  routes.client('/user_directory/search', {
    POST: {
      body: searchBody,
      handler: (req) => {
        const body = req.body as { search_term: string; limit?: number };
        return directory.search(requester(req).userId, body.search_term, body.limit);
      },
    },
  });
}
