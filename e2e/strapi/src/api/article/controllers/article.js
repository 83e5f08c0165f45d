'use strict';

// e2e: Strapi's default controller for the article collection (find, findOne, create, update, delete).
const { factories } = require('@strapi/strapi');

module.exports = factories.createCoreController('api::article.article');
