// Sentinel content: the seeds' analytics rules (infra/rules.json), the enrichment playbook (a Logic App with
// the Sentinel incident trigger and a managed identity, posting the trigger body to the enrich function), the
// automation rule that runs it when an incident is created, and the workbook of seed 000 Step 6.
param workspaceName string
param location string
param playbookName string
param functionAppId string
param sentinelAutomationPrincipalId string

var rules = loadJsonContent('../rules.json')
var roles = {
  sentinelResponder: '3e150937-b8fe-4cfb-8069-0eaf05ecd056'
  sentinelAutomationContributor: 'f4c81013-99ee-4d62-a7ee-b3f1f648599a'
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource alertRules 'Microsoft.SecurityInsights/alertRules@2024-09-01' = [for r in rules: {
  scope: workspace
  name: r.id
  kind: 'Scheduled'
  properties: {
    displayName: r.displayName
    description: r.description
    severity: r.severity
    enabled: true
    query: r.query
    queryFrequency: r.queryFrequency
    queryPeriod: r.queryPeriod
    triggerOperator: r.triggerOperator
    triggerThreshold: r.triggerThreshold
    suppressionDuration: 'PT5H'
    suppressionEnabled: false
    tactics: r.tactics
    techniques: r.techniques
    entityMappings: r.entityMappings
    customDetails: r.customDetails
    alertDetailsOverride: r.alertDetailsOverride
    eventGroupingSettings: r.eventGroupingSettings
    incidentConfiguration: {
      createIncident: true
      groupingConfiguration: {
        enabled: false
        reopenClosedIncident: false
        lookbackDuration: 'PT5H'
        matchingMethod: 'AllEntities'
        groupByEntities: []
        groupByAlertDetails: []
        groupByCustomDetails: []
      }
    }
  }
}]

resource sentinelConnection 'Microsoft.Web/connections@2016-06-01' = {
  name: 'azuresentinel-${playbookName}'
  location: location
  kind: 'V1'
  properties: {
    displayName: playbookName
    parameterValueType: 'Alternative'
    api: {
      id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'azuresentinel')
    }
  }
}

resource playbook 'Microsoft.Logic/workflows@2019-05-01' = {
  name: playbookName
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    state: 'Enabled'
    definition: {
      '$schema': 'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#'
      contentVersion: '1.0.0.0'
      parameters: {
        '$connections': {
          defaultValue: {}
          type: 'Object'
        }
      }
      triggers: {
        Microsoft_Sentinel_incident: {
          type: 'ApiConnectionWebhook'
          inputs: {
            body: {
              callback_url: '@{listCallbackUrl()}'
            }
            host: {
              connection: {
                name: '@parameters(\'$connections\')[\'azuresentinel\'][\'connectionId\']'
              }
            }
            path: '/incident-creation'
          }
        }
      }
      actions: {
        Enrich_incident: {
          type: 'Function'
          runAfter: {}
          inputs: {
            function: {
              id: '${functionAppId}/functions/enrich'
            }
            method: 'POST'
            body: '@triggerBody()'
          }
        }
      }
      outputs: {}
    }
    parameters: {
      '$connections': {
        value: {
          azuresentinel: {
            connectionId: sentinelConnection.id
            connectionName: sentinelConnection.name
            id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'azuresentinel')
            connectionProperties: {
              authentication: {
                type: 'ManagedServiceIdentity'
              }
            }
          }
        }
      }
    }
  }
}

// The playbook reads incidents as the trigger fires: Sentinel Responder on the workspace.
resource playbookResponder 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, playbook.id, roles.sentinelResponder)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sentinelResponder)
    principalId: playbook.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Sentinel itself runs playbooks from automation rules: Automation Contributor on the playbook alone.
resource automationContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(sentinelAutomationPrincipalId)) {
  scope: playbook
  name: guid(playbook.id, sentinelAutomationPrincipalId, roles.sentinelAutomationContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sentinelAutomationContributor)
    principalId: sentinelAutomationPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource automationRule 'Microsoft.SecurityInsights/automationRules@2024-09-01' = {
  scope: workspace
  name: guid(workspace.id, playbook.id, 'enrich-on-create')
  properties: {
    displayName: 'sentinel-bridge: enrich new incidents'
    order: 100
    triggeringLogic: {
      isEnabled: true
      triggersOn: 'Incidents'
      triggersWhen: 'Created'
    }
    actions: [
      {
        order: 1
        actionType: 'RunPlaybook'
        actionConfiguration: {
          logicAppResourceId: playbook.id
          tenantId: subscription().tenantId
        }
      }
    ]
  }
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(workspace.id, 'sentinel-bridge-noxys-workbook')
  location: location
  kind: 'shared'
  properties: {
    displayName: 'Noxys AI firewall (sentinel-bridge)'
    category: 'sentinel'
    sourceId: workspace.id
    serializedData: loadTextContent('../workbook.json')
  }
}
