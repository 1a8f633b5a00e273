// The Monaco editor API and its syntax-highlighting languages, exposed as `globalThis.monaco`
// for the wasm-bindgen externs in the app crate. Loaded lazily, after hydration.
import * as monaco from 'monaco-editor/editor/editor.api.js';
import 'monaco-editor/basic-languages/monaco.contribution.js';

globalThis.monaco = monaco;
