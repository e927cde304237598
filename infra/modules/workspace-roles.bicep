// What the function's identity may do on the workspace: read logs (correlation queries) and respond to
// incidents (comments, labels, severity). Nothing more, nowhere else.
param workspaceName string
param principalId string

var roles = {
  logAnalyticsReader: '73c42c96-874c-492b-b04d-ab87d138a893'
  sentinelResponder: '3e150937-b8fe-4cfb-8069-0eaf05ecd056'
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in items(roles): {
  scope: workspace
  name: guid(workspace.id, principalId, role.value)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]
