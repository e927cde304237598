// Analyses KQL queries with Microsoft's Kusto language service (syntax and semantics, against table schemas).
// Input (argv[2]): {"tables": [[name, [[column, type], ...]], ...], "queries": [{"name", "query", "tables"?}]}
// where a query's own "tables" (e.g. `source` for a DCR transformation) are added to the database for it.
// Output: a JSON array of {"name", "errors": ["message @offset", ...]}.
'use strict';
const fs = require('fs');
require('@kusto/language-service-next/bridge.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.js');
const K = Kusto.Language;

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const symbol = ([name, cols]) => K.Symbols.TableSymbol.From('(' + cols.map(([c, t]) => `['${c}']:${t}`).join(', ') + ')').WithName(name);
const base = input.tables.map(symbol);

const results = input.queries.map((q) => {
  const tables = base.concat((q.tables || []).map(symbol));
  const db = new K.Symbols.DatabaseSymbol.$ctor1('workspace', tables, false);
  const globals = K.GlobalState.Default.WithDatabase(db);
  const code = K.KustoCode.ParseAndAnalyze(q.query, globals);
  const diags = code.GetDiagnostics();
  const errors = [];
  for (let i = 0; i < diags.Count; i++) {
    const d = diags.getItem(i);
    if (String(d.Severity) === 'Error') {
      errors.push(`${d.Message} @${d.Start}: ${q.query.substr(Math.max(0, d.Start - 20), 60).replace(/\n/g, ' ')}`);
    }
  }
  return { name: q.name, errors };
});
process.stdout.write(JSON.stringify(results));
