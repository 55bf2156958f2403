// Everything the app runs on, in one resource group, reached by identity only:
//
//   Web PubSub (system identity) --event, Entra bearer token--> function app (system identity)
//   function app --REST and :generateToken, Entra token--> Web PubSub  (Web PubSub Service Owner)
//   function app --tables, host blobs, deployment package--> storage   (Table Data Contributor, Blob Data Owner)
//   function app --telemetry, Entra-authenticated--> Application Insights (Monitoring Metrics Publisher)
//
// No key, connection string with a key, or secret is read or written here. docs/deploy.md explains each
// resource, identity and role; tests/deploy/ checks this wiring offline.

extension microsoftGraphV1

param environmentName string
param location string
param resourceToken string
param tags object
param principalId string
param principalType string
param webPubSubSku string
param httpPerInstanceConcurrency int
param pythonVersion string
param webPubSubUpstreamExistingAudience string

// --- names and fixed values ------------------------------------------------------------------------------

var functionAppName = 'func-${resourceToken}'
var hubName = 'chat'
var deploymentContainerName = 'app-package'
// The service that azure.yaml names; azd finds the app to deploy to by this tag.
var serviceName = 'api'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var webPubSubServiceOwner = '12cf5a90-567b-43ae-8102-96cf46c7d9b4'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// --- the audience of the service's upstream tokens -------------------------------------------------------
// Web PubSub asks Entra for a token for `resource` with its own identity and sends it as a bearer token
// with every event. An empty resource would yield a Microsoft Graph token the app cannot validate, so the
// audience is an application of this tenant: registered here (Graph Bicep extension) unless one is given.
// The app validates aud (this value), iss (the tenant) and oid (the Web PubSub identity).

resource upstreamApplication 'Microsoft.Graph/applications@v1.0' = if (empty(webPubSubUpstreamExistingAudience)) {
  uniqueName: 'webpubsub-upstream-${resourceToken}'
  displayName: 'Web PubSub upstream (${environmentName})'
  signInAudience: 'AzureADMyOrg'
  api: {
    requestedAccessTokenVersion: 2
  }
}

// Entra issues tokens only for applications that have a service principal in the tenant.
resource upstreamServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = if (empty(webPubSubUpstreamExistingAudience)) {
  appId: upstreamApplication.appId
}

// One value for both ends: the hub's token request and the app's token check.
var upstreamAudience = empty(webPubSubUpstreamExistingAudience) ? upstreamApplication.appId : webPubSubUpstreamExistingAudience

// --- storage: app tables, Functions host blobs, the deployment package ------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The app creates its tables when missing; declaring them shows where the data lives.
resource messagesTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'messages'
}

resource presenceTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'presence'
}

// --- monitoring ------------------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Only Entra-authenticated telemetry is accepted; the connection string alone cannot ingest.
    DisableLocalAuth: true
  }
}

// --- Web PubSub --------------------------------------------------------------------------------------------

resource webPubSub 'Microsoft.SignalRService/webPubSub@2024-03-01' = {
  name: 'wps-${resourceToken}'
  location: location
  tags: tags
  sku: {
    name: webPubSubSku
    capacity: 1
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // Keyless: access keys cannot authenticate anything; REST calls and client tokens use Entra.
    disableLocalAuth: true
    disableAadAuth: false
    publicNetworkAccess: 'Enabled'
  }
}

resource hub 'Microsoft.SignalRService/webPubSub/hubs@2024-03-01' = {
  parent: webPubSub
  name: hubName
  properties: {
    anonymousConnectPolicy: 'deny'
    eventHandlers: [
      {
        // No ?code=: the route is anonymous at the Functions level and the app authenticates each event.
        urlTemplate: 'https://${functionApp.properties.defaultHostName}/api/eventhandler'
        userEventPattern: '*'
        systemEvents: [
          'connect'
          'connected'
          'disconnected'
        ]
        auth: {
          type: 'ManagedIdentity'
          managedIdentity: {
            resource: upstreamAudience
          }
        }
      }
    ]
  }
}

// --- the function app (Flex Consumption, Linux) ------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      // The settings the app reads (README, Settings). Nothing here is a secret.
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        {
          // The Python worker sends the app's logs and Azure SDK calls with OpenTelemetry, under each
          // invocation (host.json telemetryMode OpenTelemetry; azure-monitor-opentelemetry in requirements.txt).
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        {
          name: 'WebPubSubEndpoint'
          value: 'https://${webPubSub.properties.hostName}'
        }
        {
          name: 'WebPubSubHub'
          value: hubName
        }
        {
          name: 'WebPubSubUpstreamAudience'
          value: upstreamAudience
        }
        {
          name: 'WebPubSubUpstreamTenantId'
          value: tenant().tenantId
        }
        {
          name: 'WebPubSubUpstreamAllowedCallers'
          value: webPubSub.identity.principalId
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 100
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
  dependsOn: [
    deploymentContainer
  ]
}

// --- roles of the function app's identity ------------------------------------------------------------------

// Host storage (keys, timer locks) and the deployment package, by identity.
resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionApp.id, storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Messages and presence.
resource appTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionApp.id, storageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Broadcasts (REST) and client access tokens (:generateToken).
resource appWebPubSubServiceOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: webPubSub
  name: guid(webPubSub.id, functionApp.id, webPubSubServiceOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', webPubSubServiceOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Entra-authenticated telemetry (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appInsights
  name: guid(appInsights.id, functionApp.id, monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- optional: data access for the person (or pipeline) running azd, to look at tables and blobs ---------

resource userBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  scope: storage
  name: guid(storage.id, principalId, storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

resource userTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  scope: storage
  name: guid(storage.id, principalId, storageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output webPubSubName string = webPubSub.name
output webPubSubEndpoint string = 'https://${webPubSub.properties.hostName}'
output webPubSubHub string = hub.name
output webPubSubUpstreamAudience string = upstreamAudience
output storageAccountName string = storage.name
