// xterm.js 6 with the fit and web-links addons, exposed as `globalThis.CodepodXterm` for the
// wasm-bindgen externs in the app crate.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import '@xterm/xterm/css/xterm.css';

// `File "main.py", line 3` in a Python traceback (typed in a terminal or from Run) is a link
// that opens the workspace file at that line: `open(path, line)` with the path relative to
// the workspace. Paths outside it (libraries) are not links.
const TRACEBACK = /File "([^"]+)", line (\d+)/g;
function tracebackLinks(terminal, open) {
  return terminal.registerLinkProvider({
    provideLinks(y, callback) {
      const line = terminal.buffer.active.getLine(y - 1);
      if (!line) return callback(undefined);
      const text = line.translateToString(true);
      const links = [];
      for (const match of text.matchAll(TRACEBACK)) {
        let path = match[1];
        if (path.startsWith('/workspace/')) path = path.slice('/workspace/'.length);
        else if (path.startsWith('/') || path.startsWith('<')) continue;
        const number = Number(match[2]);
        links.push({
          range: { start: { x: match.index + 1, y }, end: { x: match.index + match[0].length, y } },
          text: match[0],
          decorations: { underline: true, pointerCursor: true },
          activate: () => open(path, number),
        });
      }
      callback(links.length ? links : undefined);
    },
  });
}

globalThis.CodepodXterm = { Terminal, FitAddon, WebLinksAddon, tracebackLinks };
