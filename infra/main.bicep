// `azd up` entry point: one resource group holding the whole app (infra/app.bicep).
// What each resource is for, the identities and roles, and the costs: docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the signed-in user or service principal running azd. Gets data access to storage for debugging; leave empty to grant nothing.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principal principalId names.')
param principalType string = 'User'

@allowed([
  'Free_F1'
  'Standard_S1'
  'Premium_P1'
])
@description('Web PubSub SKU. Free_F1: 20 connections and 20,000 messages a day, no SLA; Standard_S1 and up: 1,000 connections per unit.')
param webPubSubSku string = 'Free_F1'

@minValue(1)
@maxValue(1000)
@description('Concurrent HTTP invocations one Flex Consumption instance takes before the platform adds an instance (the Python default is 1). Chosen from the benchmark: see docs/performance.md.')
param httpPerInstanceConcurrency int = 32

@allowed([
  '3.11'
  '3.12'
])
@description('Python version of the function app.')
param pythonVersion string = '3.12'

@description('Audience of the tokens Web PubSub sends with every event: the client id or Application ID URI of an existing Entra application. Empty (the default): the deployment registers one with the Microsoft Graph Bicep extension.')
param webPubSubUpstreamExistingAudience string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    resourceToken: resourceToken
    tags: tags
    principalId: principalId
    principalType: principalType
    webPubSubSku: webPubSubSku
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    pythonVersion: pythonVersion
    webPubSubUpstreamExistingAudience: webPubSubUpstreamExistingAudience
  }
}

// azd stores these in .azure/<environment>/.env; none of them is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output CHAT_PAGE_URL string = 'https://${app.outputs.functionAppHostName}/api/index'
output WEB_PUBSUB_NAME string = app.outputs.webPubSubName
output WEB_PUBSUB_ENDPOINT string = app.outputs.webPubSubEndpoint
output WEB_PUBSUB_HUB string = app.outputs.webPubSubHub
output WEB_PUBSUB_UPSTREAM_AUDIENCE string = app.outputs.webPubSubUpstreamAudience
output STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
