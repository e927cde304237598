// The custom tables, from infra/schema.json (generated from the source mappings by `sentinel-bridge schema`).
param workspaceName string
param tables array

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource custom 'Microsoft.OperationalInsights/workspaces/tables@2025-07-01' = [for t in tables: {
  parent: workspace
  name: t.name
  properties: {
    plan: 'Analytics'
    schema: {
      name: t.name
      columns: t.tableColumns
    }
  }
}]
