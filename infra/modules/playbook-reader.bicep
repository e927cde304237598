// Microsoft Sentinel Reader on the workspace for the enrichment playbook's managed identity, which its Sentinel
// connection (the incident trigger) authenticates with (contract §3, "Permissions required").
param workspaceName string
@description('The playbook\'s system-assigned identity.')
param principalId string

var sentinelReader = '8d289c81-5878-46d4-8554-54e1e3d8b5cb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource playbookSentinelReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, principalId, sentinelReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
