// Monaco's base web worker (diffing, word ranges, links), bundled on its own.
import 'monaco-editor/editor/editor.worker.js';
