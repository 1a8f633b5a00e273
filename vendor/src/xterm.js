// xterm.js 6 with the fit and web-links addons, exposed as `globalThis.CodepodXterm` for the
// wasm-bindgen externs in the app crate.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import '@xterm/xterm/css/xterm.css';

globalThis.CodepodXterm = { Terminal, FitAddon, WebLinksAddon };
