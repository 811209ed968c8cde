// Direct SQL on a test server's database, for states HTTP cannot reach quickly (an access token
// past its expiry without waiting its whole lifetime; a schema from the future).
import pg from 'pg';

export async function sql<R extends pg.QueryResultRow = any>(databaseUrl: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}
