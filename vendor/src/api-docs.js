// The API docs page (/docs): Swagger UI reading the server's generated OpenAPI document.
// Served from this origin like every bundle, so the site's Content-Security-Policy holds.
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

const root = document.getElementById('api-docs');
SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  // Calls from "Try it out" carry the session cookie of this origin, as the IDE's do.
  withCredentials: true,
  tryItOutEnabled: false,
  defaultModelsExpandDepth: 0,
});
