'use strict';

const path = require('path');

// better-sqlite3 file. DATABASE_FILENAME may be absolute (the e2e harness puts it in its temp dir)
// or relative to the app directory. Strapi creates the missing directory itself.
module.exports = ({ env }) => ({
  connection: {
    client: 'sqlite',
    connection: {
      filename: path.resolve(__dirname, '..', env('DATABASE_FILENAME', '.tmp/data.db')),
    },
    useNullAsDefault: true,
    acquireConnectionTimeout: env.int('DATABASE_CONNECTION_TIMEOUT', 60000),
  },
});
