// The Monaco editor API, its syntax-highlighting languages and the editor features Codepod
// offers (docs/architecture.md, "The editor"), exposed as `globalThis.monaco` for the
// wasm-bindgen externs in the app crate. Loaded lazily, after hydration, on the IDE only.
//
// `editor.api.js` alone (Monaco ≥ 0.56) is a bare text area: every feature below is a
// contribution that registers itself when imported. Left out on purpose: the diff editor,
// the CSS/HTML/JSON/TypeScript language services (their workers are most of Monaco's size),
// the colour picker, GPU rendering, the iPad keyboard button and the token inspector.
import * as monaco from 'monaco-editor/editor/editor.api.js';
import 'monaco-editor/basic-languages/monaco.contribution.js';

// Core editing: commands, clipboard, cursor and word motions, line operations, multi-cursor,
// indentation, snippets, smart select, comment toggle, bracket matching, folding.
import 'monaco-editor/editor/browser/coreCommands.js';
import 'monaco-editor/editor/contrib/anchorSelect/browser/anchorSelect.js';
import 'monaco-editor/editor/contrib/bracketMatching/browser/bracketMatching.js';
import 'monaco-editor/editor/contrib/caretOperations/browser/caretOperations.js';
import 'monaco-editor/editor/contrib/caretOperations/browser/transpose.js';
import 'monaco-editor/editor/contrib/clipboard/browser/clipboard.js';
import 'monaco-editor/editor/contrib/comment/browser/comment.js';
import 'monaco-editor/editor/contrib/cursorUndo/browser/cursorUndo.js';
import 'monaco-editor/editor/contrib/dnd/browser/dnd.js';
import 'monaco-editor/editor/contrib/dropOrPasteInto/browser/copyPasteContribution.js';
import 'monaco-editor/editor/contrib/dropOrPasteInto/browser/dropIntoEditorContribution.js';
import 'monaco-editor/editor/contrib/folding/browser/folding.js';
import 'monaco-editor/editor/contrib/fontZoom/browser/fontZoom.js';
import 'monaco-editor/editor/contrib/indentation/browser/indentation.js';
import 'monaco-editor/editor/contrib/inPlaceReplace/browser/inPlaceReplace.js';
import 'monaco-editor/editor/contrib/insertFinalNewLine/browser/insertFinalNewLine.js';
import 'monaco-editor/editor/contrib/lineSelection/browser/lineSelection.js';
import 'monaco-editor/editor/contrib/linesOperations/browser/linesOperations.js';
import 'monaco-editor/editor/contrib/linkedEditing/browser/linkedEditing.js';
import 'monaco-editor/editor/contrib/longLinesHelper/browser/longLinesHelper.js';
import 'monaco-editor/editor/contrib/multicursor/browser/multicursor.js';
import 'monaco-editor/editor/contrib/placeholderText/browser/placeholderText.contribution.js';
import 'monaco-editor/editor/contrib/readOnlyMessage/browser/contribution.js';
import 'monaco-editor/editor/contrib/smartSelect/browser/smartSelect.js';
import 'monaco-editor/editor/contrib/snippet/browser/snippetController2.js';
import 'monaco-editor/editor/contrib/stickyScroll/browser/stickyScrollContribution.js';
import 'monaco-editor/editor/contrib/toggleTabFocusMode/browser/toggleTabFocusMode.js';
import 'monaco-editor/editor/contrib/tokenization/browser/tokenization.js';
import 'monaco-editor/editor/contrib/unicodeHighlighter/browser/unicodeHighlighter.js';
import 'monaco-editor/editor/contrib/unusualLineTerminators/browser/unusualLineTerminators.js';
import 'monaco-editor/editor/contrib/wordHighlighter/browser/wordHighlighter.js';
import 'monaco-editor/editor/contrib/wordOperations/browser/wordOperations.js';
import 'monaco-editor/editor/contrib/wordPartOperations/browser/wordPartOperations.js';

// Find and replace.
import 'monaco-editor/features/find/register.js';
import 'monaco-editor/editor/contrib/find/browser/findController.js';

// What a language server feeds (completion, hover, signatures, diagnostics, definitions,
// references, rename, formatting, code actions, inlay hints, semantic tokens, code lenses);
// with no server, completion offers the words of the open files.
import 'monaco-editor/editor/contrib/codeAction/browser/codeActionContributions.js';
import 'monaco-editor/editor/contrib/codelens/browser/codelensController.js';
import 'monaco-editor/editor/contrib/documentSymbols/browser/documentSymbols.js';
import 'monaco-editor/editor/contrib/format/browser/formatActions.js';
import 'monaco-editor/editor/contrib/gotoError/browser/gotoError.js';
import 'monaco-editor/editor/contrib/gotoError/browser/markerSelectionStatus.js';
import 'monaco-editor/editor/contrib/gotoSymbol/browser/goToCommands.js';
import 'monaco-editor/editor/contrib/gotoSymbol/browser/link/goToDefinitionAtPosition.js';
import 'monaco-editor/editor/contrib/hover/browser/hoverContribution.js';
import 'monaco-editor/editor/contrib/inlayHints/browser/inlayHintsContribution.js';
import 'monaco-editor/editor/contrib/inlineCompletions/browser/inlineCompletions.contribution.js';
import 'monaco-editor/editor/contrib/inlineProgress/browser/inlineProgress.js';
import 'monaco-editor/editor/contrib/links/browser/links.js';
import 'monaco-editor/editor/contrib/parameterHints/browser/parameterHints.js';
import 'monaco-editor/editor/contrib/rename/browser/rename.js';
import 'monaco-editor/editor/contrib/semanticTokens/browser/documentSemanticTokens.js';
import 'monaco-editor/editor/contrib/semanticTokens/browser/viewportSemanticTokens.js';
import 'monaco-editor/editor/contrib/suggest/browser/suggestController.js';
import 'monaco-editor/editor/contrib/suggest/browser/suggestInlineCompletions.js';
import 'monaco-editor/editor/standalone/browser/referenceSearch/standaloneReferenceSearch.js';

// The context menu, and the command palette (F1), go to line (Ctrl+G) and go to symbol.
import 'monaco-editor/editor/contrib/contextmenu/browser/contextmenu.js';
import 'monaco-editor/editor/standalone/browser/quickAccess/standaloneCommandsQuickAccess.js';
import 'monaco-editor/editor/standalone/browser/quickAccess/standaloneGotoLineQuickAccess.js';
import 'monaco-editor/editor/standalone/browser/quickAccess/standaloneGotoSymbolQuickAccess.js';
import 'monaco-editor/editor/standalone/browser/quickAccess/standaloneHelpQuickAccess.js';
import 'monaco-editor/editor/standalone/browser/toggleHighContrast/toggleHighContrast.js';
import 'monaco-editor/editor/common/standaloneStrings.js';

// Monaco's own LSP client (not in monaco-editor's export map; imported by file).
import { MonacoLspClient } from '../node_modules/monaco-editor/esm/external/monaco-lsp-client/out/index.js';

globalThis.monaco = monaco;

// The browser half of the workspace's Python language server (agent/src/lsp.rs is the
// other): Monaco's LSP client over a transport whose messages the app (Rust, in
// app/src/editor/lsp.rs) carries on the IDE socket's LSP channel. One per page, because
// Monaco's client cannot be disposed; a new socket (a reconnect, another workspace)
// `connected()` replays what the agent needs: initialize, then the open Python documents.
//
// It also works around the client's gaps: URIs it lowercases on open (monaco-editor#5224)
// get their model's spelling back, models of other languages are not opened, the
// workspace root goes into `initialize`, and requests in flight when the socket closes
// fail instead of hanging.
let lsp = null;
const LOCATIONS = new Set(['textDocument/definition', 'textDocument/declaration', 'textDocument/typeDefinition', 'textDocument/implementation', 'textDocument/references']);
globalThis.codepodLsp = (send, root) => {
  if (lsp) {
    lsp.send = send;
    lsp.root = root;
    return lsp;
  }
  lsp = {
    send,
    root,
    open: false,
    listener: undefined,
    initialize: null,
    inFlight: new Map(),
    // The last diagnostics of each document (see `withDiagnostics`).
    diagnostics: new Map(),
    replayed: new Set(),
    replayIds: 0,
    // Models made empty for a jump into a file not open yet (Monaco's client needs a model
    // for every location it shows), until the app fills them: nothing about them reaches
    // the server until then (it reads the file from disk meanwhile).
    placeholders: new Map(),
    // Library files asked of the agent (`codepod/source`), by request id.
    sources: new Map(),
    transport: {
      state: { value: { state: 'open' }, onChange: () => ({ dispose() {} }) },
      setListener: (listener) => { lsp.listener = listener; },
      send: async (message) => { lsp.out(message); },
      toString: () => 'codepod-lsp',
    },
    modelOf(uri) {
      const lower = uri.toLowerCase();
      return monaco.editor.getModels().find((m) => m.uri.toString(true).toLowerCase() === lower);
    },
    out(message) {
      const method = message.method;
      if (method === 'initialize') {
        message.params = { ...message.params, rootUri: lsp.root, workspaceFolders: [{ uri: lsp.root, name: 'workspace' }] };
        lsp.initialize = message.params;
      }
      if (method && method.startsWith('textDocument/did')) {
        const model = lsp.modelOf(message.params.textDocument.uri);
        if (!model || model.getLanguageId() !== 'python') return;
        const uri = model.uri.toString(true);
        const held = lsp.placeholders.get(uri);
        if (held === null) return;
        if (held !== undefined && method === 'textDocument/didChange' && message.params.textDocument.version <= held) return;
        message.params.textDocument.uri = uri;
      }
      if (!lsp.open) {
        if (method && message.id !== undefined) lsp.fail(message.id);
        return;
      }
      if (method === 'textDocument/codeAction') lsp.withDiagnostics(message.params);
      if (method && message.id !== undefined) lsp.inFlight.set(message.id, { method, uri: message.params?.textDocument?.uri });
      lsp.send(JSON.stringify(message));
    },
    fail(id) {
      lsp.listener?.({ jsonrpc: '2.0', id, error: { code: -32099, message: 'not connected to the sandbox' } });
    },
    receive(text) {
      let message;
      try { message = JSON.parse(text); } catch { return; }
      if (message.method === undefined && message.id !== undefined) {
        if (lsp.replayed.delete(message.id)) return;
        const source = lsp.sources.get(message.id);
        if (source) {
          lsp.sources.delete(message.id);
          if (!source.model.isDisposed() && typeof message.result?.text === 'string') source.model.setValue(message.result.text);
          source.resolve();
          return;
        }
        const { method, uri } = lsp.inFlight.get(message.id) ?? {};
        lsp.inFlight.delete(message.id);
        // A request the server dropped because the document changed meanwhile (ContentModified,
        // -32801) or that was cancelled (-32800) has no result; Monaco's client would throw the
        // error at the page (an outline asked for mid-typing, say). Every request but a pull of
        // diagnostics (whose client asks again on that error) takes null as "nothing".
        if ((message.error?.code === -32801 || message.error?.code === -32800) && method !== 'textDocument/diagnostic') {
          message = { jsonrpc: '2.0', id: message.id, result: null };
        }
        if (method === 'textDocument/diagnostic' && Array.isArray(message.result?.items)) lsp.diagnostics.set(uri, message.result.items);
        if (LOCATIONS.has(method) && message.result) {
          // Library files are fetched before Monaco sees the locations, so that its peek
          // view opens on their text at the right line.
          const fetching = lsp.placehold(message.result);
          if (fetching.length) {
            const timeout = new Promise((resolve) => setTimeout(resolve, 3000));
            Promise.race([Promise.all(fetching), timeout]).then(() => lsp.listener?.(message));
            return;
          }
        }
      }
      if (message.method === 'textDocument/publishDiagnostics') lsp.diagnostics.set(message.params.uri, message.params.diagnostics);
      lsp.listener?.(message);
    },
    // Monaco's client asks for code actions with the markers' range, message and severity
    // only; the servers' fixes need the diagnostics' code and data (ty's "import math.sqrt",
    // ruff's fixes). The last diagnostics of each document are kept to put them back.
    withDiagnostics(params) {
      if (!params?.context) return;
      const known = lsp.diagnostics.get(params.textDocument?.uri) ?? [];
      const same = (a, b) => a.start.line === b.start.line && a.start.character === b.start.character
        && a.end.line === b.end.line && a.end.character === b.end.character;
      const asked = params.context.diagnostics ?? [];
      params.context.diagnostics = asked.map((d) => known.find((k) => k.message === d.message && same(k.range, d.range)) ?? d);
    },
    connected() {
      lsp.open = true;
      if (!lsp.client) {
        lsp.start();
        return;
      }
      if (!lsp.initialize) return;
      const id = `codepod-replay-${++lsp.replayIds}`;
      lsp.replayed.add(id);
      const initialize = { ...lsp.initialize, rootUri: lsp.root, workspaceFolders: [{ uri: lsp.root, name: 'workspace' }] };
      lsp.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize', params: initialize }));
      lsp.send(JSON.stringify({ jsonrpc: '2.0', method: 'initialized', params: {} }));
      for (const model of monaco.editor.getModels()) {
        if (model.getLanguageId() !== 'python') continue;
        lsp.send(JSON.stringify({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: {
          uri: model.uri.toString(true), languageId: 'python', version: model.getVersionId(), text: model.getValue(),
        } } }));
      }
    },
    placehold(result) {
      const fetching = [];
      for (const location of Array.isArray(result) ? result : [result]) {
        const uri = location?.uri ?? location?.targetUri;
        if (typeof uri !== 'string' || !uri.startsWith('file:///') || lsp.modelOf(uri)) continue;
        lsp.placeholders.set(uri, null);
        const model = monaco.editor.createModel('', 'python', monaco.Uri.parse(uri));
        model.onWillDispose(() => lsp.placeholders.delete(uri));
        if (!uri.startsWith(`${lsp.root}/`)) {
          // A library file: its text from the agent, shown read-only (peek), never sent back.
          fetching.push(lsp.library(uri, model));
          continue;
        }
        const filled = model.onDidChangeContent(() => {
          filled.dispose();
          // Filled by the app: the server gets this tab's text from now on.
          lsp.placeholders.set(uri, model.getVersionId());
          if (!lsp.open) return;
          lsp.send(JSON.stringify({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: {
            uri, languageId: 'python', version: model.getVersionId(), text: model.getValue(),
          } } }));
        });
      }
      return fetching;
    },
    library(uri, model) {
      if (!lsp.open) return Promise.resolve();
      const id = `codepod-source-${++lsp.replayIds}`;
      return new Promise((resolve) => {
        lsp.sources.set(id, { model, resolve });
        lsp.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'codepod/source', params: { uri } }));
      });
    },
    // The client (and so the sandbox's servers) starts with the first Python file opened.
    start() {
      const python = () => monaco.editor.getModels().some((m) => m.getLanguageId() === 'python');
      if (python()) {
        lsp.client = new MonacoLspClient(lsp.transport);
        return;
      }
      if (lsp.waitingForPython) return;
      lsp.waitingForPython = monaco.editor.onDidCreateModel((model) => {
        if (model.getLanguageId() !== 'python' || lsp.client || !lsp.open) return;
        lsp.waitingForPython.dispose();
        lsp.waitingForPython = null;
        lsp.client = new MonacoLspClient(lsp.transport);
      });
    },
    disconnected() {
      lsp.open = false;
      for (const id of lsp.inFlight.keys()) lsp.fail(id);
      lsp.inFlight.clear();
      for (const source of lsp.sources.values()) source.resolve();
      lsp.sources.clear();
      lsp.replayed.clear();
    },
  };
  return lsp;
};
