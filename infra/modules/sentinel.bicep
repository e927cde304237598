// Sentinel content: the seeds' analytics rules (infra/rules.json), the enrichment playbook (a Logic App with
// the Sentinel incident trigger, posting the trigger body to /api/enrich), the automation rule that runs it
// when an incident is created, the role that lets Sentinel run it, the workbook of seed 000 Step 6, and a saved
// search for the rows the DCRs dropped.
//
// The playbook calls the function with an HTTP action and the deployment's enrichment key (`enrichKey`, also
// the function's ENRICH_KEY through Key Vault), kept in a secure workflow parameter and hidden from run
// history. Not the host's function key: `listKeys()` on the Functions host runs during the deployment that
// creates the app, before code is published and while the host runtime may not answer, and intermittently
// failed first deployments; the enrichment key depends on nothing but this deployment. Not the Logic Apps
// "Azure Functions" action: it supports only C# and JavaScript functions on the HTTP trigger template, without
// custom routes, and resolves the function when the workflow is saved, before any code is published on a first
// deployment. Not the playbook's managed identity either: the handler would have to validate Entra tokens for
// an app registration that Bicep cannot create.
param workspaceName string
param location string
param playbookName string
param functionHostName string
@secure()
param enrichKey string
@description('Object id of the "Azure Security Insights" service principal (app id 98785600-1bb7-4fb9-b9fa-19afe2c8a360).')
param sentinelAutomationPrincipalId string

var rules = loadJsonContent('../rules.json')
var roles = {
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
  // A gap of the published types (Microsoft.Web/connections@2016-06-01 declares no `kind`): V1 is the
  // Consumption Logic Apps connection, the kind the managed-identity Sentinel connector is created with.
  #disable-next-line BCP037
  kind: 'V1'
  properties: {
    displayName: playbookName
    // A gap of the published types: `parameterValueType: 'Alternative'` is how a managed API connection
    // authenticates with the playbook's managed identity (Logic Apps, "Authenticate with managed identity").
    #disable-next-line BCP037
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
        enrichKey: {
          type: 'SecureString'
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
          type: 'Http'
          runAfter: {}
          inputs: {
            method: 'POST'
            uri: 'https://${functionHostName}/api/enrich'
            headers: {
              'content-type': 'application/json'
              'x-enrich-key': '@{parameters(\'enrichKey\')}'
            }
            body: '@triggerBody()'
            retryPolicy: {
              type: 'exponential'
              count: 4
              interval: 'PT20S'
            }
          }
          // The asynchronous pattern, on by default for the HTTP action and never disabled here
          // (`operationOptions: 'DisableAsyncPattern'`): a run that outlasts ENRICH_SYNC_WAIT_SECS answers 202 with
          // a Location the action polls until the run answers, instead of the action giving up at 120 s and its
          // retry policy sending the incident again. The whole action, polling included, may take 30 minutes.
          limit: {
            timeout: 'PT30M'
          }
          // The key is in the inputs: keep them out of the run history.
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
              ]
            }
          }
        }
      }
      outputs: {}
    }
    parameters: {
      enrichKey: {
        // While rotating, ENRICH_KEY is '<new>,<old>': the playbook sends the new one.
        value: first(split(enrichKey, ','))
      }
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

// Sentinel itself runs playbooks from automation rules: Microsoft Sentinel Automation Contributor for its
// service principal on the playbook's resource group (Sentinel, "Configure permissions for playbooks": granted
// on the resource group, not on the Logic App). The automation rule waits for it.
resource automationContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, sentinelAutomationPrincipalId, roles.sentinelAutomationContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sentinelAutomationContributor)
    principalId: sentinelAutomationPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The playbook's Sentinel connection authenticates with the playbook's managed identity: the incident trigger
// needs Microsoft Sentinel Reader on the workspace (Sentinel, "Authenticate playbooks to Microsoft Sentinel",
// permissions required; contract §3). Reader only: the playbook never updates the incident, the function does.
// In a module, so the assignment's name can carry the principal (known once the playbook exists).
module playbookSentinelReader 'playbook-reader.bicep' = {
  name: 'playbook-sentinel-reader'
  params: {
    workspaceName: workspaceName
    principalId: playbook.identity.principalId
  }
}

resource automationRule 'Microsoft.SecurityInsights/automationRules@2024-09-01' = {
  scope: workspace
  dependsOn: [
    automationContributor
    playbookSentinelReader
  ]
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

// What the DCRs could not take (DCRLogErrors, filled by their diagnostic settings): Logs > Queries > sentinel-bridge.
resource droppedRows 'Microsoft.OperationalInsights/workspaces/savedSearches@2023-09-01' = {
  parent: workspace
  name: 'sentinel-bridge-dcr-errors'
  properties: {
    category: 'sentinel-bridge'
    displayName: 'sentinel-bridge: rows the data collection rules dropped'
    query: loadTextContent('../../queries/dcr_errors.kql')
  }
}
