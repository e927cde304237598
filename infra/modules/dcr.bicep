// One data collection rule (at most 10 streams and 10 data flows, azure-monitor
// essentials/data-collection-rule-overview.md "Limits"; infra/schema.json's `rules` splits the tables), sent
// through the shared endpoint; Monitoring Metrics Publisher for the function's identity on this rule alone; and
// a diagnostic setting so the rows it drops (transformation errors, columns it cannot take) fill DCRLogErrors.
// A 204 from the Logs Ingestion API means accepted, not landed: queries/dcr_errors.kql reads what was not.
param name string
param location string
param workspaceResourceId string
param endpointId string
param tables array
@description('The streams\' declarations, keyed by stream name (infra/schema.json).')
param streamDeclarations object
param principalId string

var metricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Read-only, on this rule alone: lets `sentinel-bridge doctor` compare the deployed declarations with the mappings.
var monitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'

resource dcr 'Microsoft.Insights/dataCollectionRules@2024-03-11' = {
  name: name
  location: location
  properties: {
    dataCollectionEndpointId: endpointId
    streamDeclarations: streamDeclarations
    destinations: {
      logAnalytics: [
        {
          workspaceResourceId: workspaceResourceId
          name: 'sentinel'
        }
      ]
    }
    dataFlows: [for t in tables: {
      streams: [
        t.stream
      ]
      destinations: [
        'sentinel'
      ]
      transformKql: 'source'
      outputStream: t.stream
    }]
  }
}

resource errors 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: dcr
  name: 'dcr-log-errors'
  properties: {
    workspaceId: workspaceResourceId
    logs: [
      {
        category: 'LogErrors'
        enabled: true
      }
    ]
  }
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: dcr
  name: guid(dcr.id, principalId, metricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', metricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: dcr
  name: guid(dcr.id, principalId, monitoringReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = dcr.id
output immutableId string = dcr.properties.immutableId
