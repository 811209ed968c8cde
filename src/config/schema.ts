// The config file's ajv schema. Every key is documented in config.example.yaml; an unknown key,
// a wrong type or a missing required value stops the start with a message naming the key.
import type { JSONSchemaType } from 'ajv';

export type ListenerResource = 'client' | 'federation' | 'media' | 'admin' | 'metrics';

export interface ListenerConfig {
  port: number;
  bind_addresses: string[];
  resources: ListenerResource[];
  tls?: { certificate_path: string; private_key_path: string };
}

export interface RateLimitRule {
  per_second: number;
  burst_count: number;
}

export interface PratConfig {
  server_name: string;
  public_baseurl: string;
  signing_key_path: string;
  listeners: ListenerConfig[];
  database: {
    /** An external PostgreSQL URL; when absent the embedded PostgreSQL runs in `embedded.data_dir`. */
    url?: string;
    embedded?: { data_dir: string; port?: number; password: string };
    max_connections: number;
  };
  media: {
    store_path: string;
    max_upload_size: number;
    enable_authenticated_media: boolean;
    /** Created (POST /create) but not yet uploaded media ids a user may hold at once. */
    max_pending_uploads: number;
    /** How long an id from POST /create stays usable before it expires unused. */
    unused_expires_after_ms: number;
    /** Images with more pixels than this are not thumbnailed (decompression bombs). */
    max_image_pixels: number;
    thumbnail_sizes: { width: number; height: number; method: 'crop' | 'scale' }[];
    url_preview: {
      enabled: boolean;
      /** Largest page or image fetched for a preview, in bytes. */
      max_page_size: number;
      timeout_ms: number;
      /** CIDR ranges fetched even though they are private/loopback/link-local (tests, intranets). */
      ip_range_allowlist: string[];
      /** CIDR ranges refused in addition to the built-in non-public ranges. */
      ip_range_blocklist: string[];
    };
  };
  registration: {
    enabled: boolean;
    shared_secret?: string;
    require_token: boolean;
    allow_guests: boolean;
  };
  rate_limits: {
    enabled: boolean;
    login: RateLimitRule;
    registration: RateLimitRule;
    message: RateLimitRule;
    media_upload: RateLimitRule;
    default: RateLimitRule;
  };
  limits: {
    max_request_body_size: number;
  };
  rooms: {
    default_room_version: string;
  };
  log: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    format: 'json' | 'pretty';
  };
  well_known: {
    /** Served at /.well-known/matrix/server; absent: answered 404. */
    server?: string;
    /** Extra keys merged into /.well-known/matrix/client. */
    client_extra?: Record<string, unknown>;
    /** MatrixRTC foci advertised as org.matrix.msc4143.rtc_foci (Element Call). Each focus's other
     * keys (e.g. livekit_service_url) are kept and served as written. */
    rtc_foci?: { type: string }[];
  };
  /** TURN for VoIP: coturn's use-auth-secret. No uris or no secret: /voip/turnServer answers {}. */
  turn: {
    uris: string[];
    shared_secret?: string;
    user_lifetime_seconds: number;
    allow_guests: boolean;
  };
  presence: {
    /** Presence (online/unavailable/offline) tracked and shared; off: PUT is accepted and ignored. */
    enabled: boolean;
  };
  user_directory: {
    /** Every local user is findable; off: only users who share a room or are in a public room. */
    search_all_users: boolean;
  };
  push: {
    /** CIDR ranges push gateways may be at even though private/loopback/link-local. */
    ip_range_allowlist: string[];
    /** CIDR ranges refused in addition to the built-in non-public ranges. */
    ip_range_blocklist: string[];
  };
  tls: {
    /** Extra CA certificate files trusted for outbound HTTPS (federation, URL previews). */
    extra_ca_files: string[];
  };
}

const rateLimitRule = {
  type: 'object',
  additionalProperties: false,
  required: ['per_second', 'burst_count'],
  properties: {
    per_second: { type: 'number', exclusiveMinimum: 0 },
    burst_count: { type: 'integer', minimum: 1 },
  },
} as const;

export const configSchema: JSONSchemaType<PratConfig> = {
  type: 'object',
  additionalProperties: false,
  required: [
    'server_name',
    'public_baseurl',
    'signing_key_path',
    'listeners',
    'database',
    'media',
    'registration',
    'rate_limits',
    'limits',
    'rooms',
    'log',
    'well_known',
    'turn',
    'presence',
    'user_directory',
    'push',
    'tls',
  ],
  properties: {
    server_name: { type: 'string', minLength: 1 },
    public_baseurl: { type: 'string', format: 'uri' },
    signing_key_path: { type: 'string', minLength: 1 },
    listeners: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['port', 'bind_addresses', 'resources'],
        properties: {
          port: { type: 'integer', minimum: 0, maximum: 65535 },
          bind_addresses: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
          resources: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { type: 'string', enum: ['client', 'federation', 'media', 'admin', 'metrics'] },
          },
          tls: {
            type: 'object',
            nullable: true,
            additionalProperties: false,
            required: ['certificate_path', 'private_key_path'],
            properties: {
              certificate_path: { type: 'string', minLength: 1 },
              private_key_path: { type: 'string', minLength: 1 },
            },
          },
        },
      },
    },
    database: {
      type: 'object',
      additionalProperties: false,
      required: ['max_connections'],
      properties: {
        url: { type: 'string', nullable: true, minLength: 1 },
        embedded: {
          type: 'object',
          nullable: true,
          additionalProperties: false,
          required: ['data_dir', 'password'],
          properties: {
            data_dir: { type: 'string', minLength: 1 },
            port: { type: 'integer', nullable: true, minimum: 0, maximum: 65535 },
            password: { type: 'string', minLength: 1 },
          },
        },
        max_connections: { type: 'integer', minimum: 1, maximum: 1000 },
      },
    },
    media: {
      type: 'object',
      additionalProperties: false,
      required: [
        'store_path',
        'max_upload_size',
        'enable_authenticated_media',
        'max_pending_uploads',
        'unused_expires_after_ms',
        'max_image_pixels',
        'thumbnail_sizes',
        'url_preview',
      ],
      properties: {
        store_path: { type: 'string', minLength: 1 },
        max_upload_size: { type: 'integer', minimum: 1 },
        enable_authenticated_media: { type: 'boolean' },
        max_pending_uploads: { type: 'integer', minimum: 1 },
        unused_expires_after_ms: { type: 'integer', minimum: 1000 },
        max_image_pixels: { type: 'integer', minimum: 1 },
        thumbnail_sizes: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['width', 'height', 'method'],
            properties: {
              width: { type: 'integer', minimum: 1, maximum: 10000 },
              height: { type: 'integer', minimum: 1, maximum: 10000 },
              method: { type: 'string', enum: ['crop', 'scale'] },
            },
          },
        },
        url_preview: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled', 'max_page_size', 'timeout_ms', 'ip_range_allowlist', 'ip_range_blocklist'],
          properties: {
            enabled: { type: 'boolean' },
            max_page_size: { type: 'integer', minimum: 1024 },
            timeout_ms: { type: 'integer', minimum: 100, maximum: 600000 },
            ip_range_allowlist: { type: 'array', items: { type: 'string', minLength: 1 } },
            ip_range_blocklist: { type: 'array', items: { type: 'string', minLength: 1 } },
          },
        },
      },
    },
    registration: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'require_token', 'allow_guests'],
      properties: {
        enabled: { type: 'boolean' },
        shared_secret: { type: 'string', nullable: true, minLength: 1 },
        require_token: { type: 'boolean' },
        allow_guests: { type: 'boolean' },
      },
    },
    rate_limits: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'login', 'registration', 'message', 'media_upload', 'default'],
      properties: {
        enabled: { type: 'boolean' },
        login: rateLimitRule,
        registration: rateLimitRule,
        message: rateLimitRule,
        media_upload: rateLimitRule,
        default: rateLimitRule,
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      required: ['max_request_body_size'],
      properties: { max_request_body_size: { type: 'integer', minimum: 1024 } },
    },
    rooms: {
      type: 'object',
      additionalProperties: false,
      required: ['default_room_version'],
      properties: { default_room_version: { type: 'string', minLength: 1 } },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      required: ['level', 'format'],
      properties: {
        level: { type: 'string', enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
        format: { type: 'string', enum: ['json', 'pretty'] },
      },
    },
    well_known: {
      type: 'object',
      additionalProperties: false,
      required: [],
      properties: {
        server: { type: 'string', nullable: true, minLength: 1 },
        client_extra: { type: 'object', nullable: true, required: [] },
        rtc_foci: {
          type: 'array',
          nullable: true,
          // Each focus names its `type` (e.g. livekit); the rest is the focus's own settings.
          items: { type: 'object', required: ['type'], properties: { type: { type: 'string', minLength: 1 } } },
        },
      },
    },
    turn: {
      type: 'object',
      additionalProperties: false,
      required: ['uris', 'user_lifetime_seconds', 'allow_guests'],
      properties: {
        uris: { type: 'array', items: { type: 'string', pattern: '^turns?:' } },
        shared_secret: { type: 'string', nullable: true, minLength: 1 },
        user_lifetime_seconds: { type: 'integer', minimum: 60 },
        allow_guests: { type: 'boolean' },
      },
    },
    presence: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled'],
      properties: { enabled: { type: 'boolean' } },
    },
    user_directory: {
      type: 'object',
      additionalProperties: false,
      required: ['search_all_users'],
      properties: { search_all_users: { type: 'boolean' } },
    },
    push: {
      type: 'object',
      additionalProperties: false,
      required: ['ip_range_allowlist', 'ip_range_blocklist'],
      properties: {
        ip_range_allowlist: { type: 'array', items: { type: 'string', minLength: 1 } },
        ip_range_blocklist: { type: 'array', items: { type: 'string', minLength: 1 } },
      },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['extra_ca_files'],
      properties: { extra_ca_files: { type: 'array', items: { type: 'string', minLength: 1 } } },
    },
  },
};
