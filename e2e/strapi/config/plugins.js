'use strict';

// users-permissions (Content API login) configuration, all switchable by env for the e2e tests.
// Option names are those of @strapi/plugin-users-permissions 5.54.0 (server/src/config.js,
// bootstrap/index.js, middlewares/rateLimit.js, controllers/auth.js).
const MODES = ['legacy-support', 'refresh'];

// jsonwebtoken reads a bare numeric *string* as milliseconds ("60" = 60 ms): a plain number here means seconds.
const duration = (v) => (/^\d+$/.test(String(v).trim()) ? Number(v) : v);

module.exports = ({ env }) => {
  const jwtManagement = env('STRAPI_JWT_MANAGEMENT', 'legacy-support');
  if (!MODES.includes(jwtManagement)) {
    throw new Error(`STRAPI_JWT_MANAGEMENT must be one of ${MODES.join(', ')}, got "${jwtManagement}"`);
  }
  const ratelimit = env('STRAPI_RATELIMIT', 'off');
  if (!['on', 'off'].includes(ratelimit)) {
    throw new Error(`STRAPI_RATELIMIT must be "on" or "off", got "${ratelimit}"`);
  }

  return {
    'users-permissions': {
      config: {
        // Signs the users-permissions JWTs (legacy mode) and the access/refresh tokens (refresh mode).
        jwtSecret: env('JWT_SECRET', 'e2e-test-users-permissions-jwt-secret-not-for-production'),
        // Legacy mode: lifetime of the single JWT (`exp` claim): seconds, or "2h", "30d"... Default as Strapi's: 30 days.
        jwt: {
          expiresIn: duration(env('JWT_EXPIRES_IN', '30d')),
        },
        // 'legacy-support' (default): login returns one long-lived JWT {id, iat, exp}.
        // 'refresh': login returns a short access JWT + a refresh token (body, or cookie when httpOnly).
        jwtManagement,
        // Only used in 'refresh' mode. Lifespans are in seconds.
        sessions: {
          accessTokenLifespan: env.int('STRAPI_ACCESS_LIFESPAN', 10 * 60),
          maxRefreshTokenLifespan: env.int('STRAPI_MAX_REFRESH_LIFESPAN', 30 * 24 * 60 * 60),
          idleRefreshTokenLifespan: env.int('STRAPI_IDLE_REFRESH_LIFESPAN', 14 * 24 * 60 * 60),
          maxSessionLifespan: env.int('STRAPI_MAX_SESSION_LIFESPAN', 24 * 60 * 60),
          idleSessionLifespan: env.int('STRAPI_IDLE_SESSION_LIFESPAN', 2 * 60 * 60),
          // true: the refresh token is set as the HttpOnly cookie `strapi_up_refresh` instead of the body
          // (login and /api/auth/refresh; register always answers in the body).
          httpOnly: env.bool('STRAPI_SESSIONS_HTTPONLY', false),
          cookie: {
            // Strapi's default is Secure in production; the tests talk plain HTTP on 127.0.0.1.
            secure: env.bool('STRAPI_REFRESH_COOKIE_SECURE', false),
          },
        },
        // Strapi's own per-IP+identifier limiter on /api/auth/* (10 per minute by default).
        // Off by default so that the proxy's limiter is what the tests see.
        ratelimit: {
          enabled: ratelimit === 'on',
          interval: env.int('STRAPI_RATELIMIT_INTERVAL_MS', 60000),
          max: env.int('STRAPI_RATELIMIT_MAX', 10),
        },
        // Extra fields accepted by POST /api/auth/local/register. Empty by default: a body that
        // sets `audience` gets 400 "Invalid parameters: audience" from Strapi itself.
        register: {
          allowedFields: env.array('STRAPI_REGISTER_ALLOWED_FIELDS', []),
        },
      },
    },
    // @strapi/plugin-graphql 5.54.0 (dist/server/config/default-config.js, bootstrap.js). The
    // proxy's graphqlPath guards `endpoint`. No landing page, bounded depth and page sizes, and
    // Apollo's batching on (STRAPI_GRAPHQL_BATCHING=false turns it off) so that the e2e tests see
    // what a batched request does.
    graphql: {
      config: {
        endpoint: env('STRAPI_GRAPHQL_ENDPOINT', '/graphql'),
        landingPage: false,
        depthLimit: env.int('STRAPI_GRAPHQL_DEPTH_LIMIT', 10),
        defaultLimit: 25,
        maxLimit: 100,
        apolloServer: {
          allowBatchedHttpRequests: env.bool('STRAPI_GRAPHQL_BATCHING', true),
        },
      },
    },
  };
};
