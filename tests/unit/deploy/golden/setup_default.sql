-- spcs-llm setup: the Snowflake side of serving LLMs to Dataiku from Snowpark Container Services.
-- Rendered by `spcs-llm setup-sql`; review it, then run it in a worksheet. Every statement is idempotent.

-- 1. Account objects, as ACCOUNTADMIN --------------------------------------------------------------------------
USE ROLE ACCOUNTADMIN;

-- Roles: SPCS_LLM_DEPLOYER owns models and services; SPCS_LLM_USER calls the endpoints (DSS users / service account).
CREATE ROLE IF NOT EXISTS SPCS_LLM_DEPLOYER;
CREATE ROLE IF NOT EXISTS SPCS_LLM_USER;
GRANT ROLE SPCS_LLM_USER TO ROLE SPCS_LLM_DEPLOYER;
GRANT ROLE SPCS_LLM_DEPLOYER TO ROLE SYSADMIN;
-- Give the roles to people: GRANT ROLE SPCS_LLM_DEPLOYER TO USER <you>;  GRANT ROLE SPCS_LLM_USER TO USER <dss user>;

-- Warehouse for the registry's SQL (log_model, SHOW ...): smallest size, suspends after 60 s idle.
CREATE WAREHOUSE IF NOT EXISTS SPCS_LLM_WH
  WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60 AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE;
GRANT USAGE ON WAREHOUSE SPCS_LLM_WH TO ROLE SPCS_LLM_DEPLOYER;

CREATE DATABASE IF NOT EXISTS SPCS_LLM;
CREATE SCHEMA IF NOT EXISTS SPCS_LLM.MODELS;
GRANT USAGE ON DATABASE SPCS_LLM TO ROLE SPCS_LLM_DEPLOYER;
GRANT ALL ON SCHEMA SPCS_LLM.MODELS TO ROLE SPCS_LLM_DEPLOYER;
GRANT USAGE ON DATABASE SPCS_LLM TO ROLE SPCS_LLM_USER;
GRANT USAGE ON SCHEMA SPCS_LLM.MODELS TO ROLE SPCS_LLM_USER;

-- Compute pools. Billed while IDLE or ACTIVE, not while SUSPENDED: they start suspended, resume on demand
-- and suspend after 600 s without services. Services are deployed with min_instances = 0 so they
-- suspend when idle too.
CREATE COMPUTE POOL IF NOT EXISTS SPCS_LLM_GPU_POOL
  MIN_NODES = 1 MAX_NODES = 1 INSTANCE_FAMILY = GPU_NV_S
  AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = 600 INITIALLY_SUSPENDED = TRUE;
CREATE COMPUTE POOL IF NOT EXISTS SPCS_LLM_CPU_POOL
  MIN_NODES = 1 MAX_NODES = 1 INSTANCE_FAMILY = CPU_X64_S
  AUTO_RESUME = TRUE AUTO_SUSPEND_SECS = 600 INITIALLY_SUSPENDED = TRUE;
GRANT USAGE, MONITOR ON COMPUTE POOL SPCS_LLM_GPU_POOL TO ROLE SPCS_LLM_DEPLOYER;
GRANT USAGE, MONITOR ON COMPUTE POOL SPCS_LLM_CPU_POOL TO ROLE SPCS_LLM_DEPLOYER;

-- Public (ingress) endpoints: create_service(..., ingress_enabled=True) needs this on the owner's role.
GRANT BIND SERVICE ENDPOINT ON ACCOUNT TO ROLE SPCS_LLM_DEPLOYER;

-- Egress for the image build (pip packages) and for downloading weights from the Hugging Face Hub.
-- If an image build or a download is blocked, add the host its log names to VALUE_LIST.
CREATE NETWORK RULE IF NOT EXISTS SPCS_LLM.MODELS.SPCS_LLM_EGRESS
  MODE = EGRESS TYPE = HOST_PORT
  VALUE_LIST = ('pypi.org', 'files.pythonhosted.org', 'huggingface.co', 'cdn-lfs.huggingface.co', 'cdn-lfs-us-1.hf.co');
CREATE EXTERNAL ACCESS INTEGRATION IF NOT EXISTS SPCS_LLM_EGRESS_EAI
  ALLOWED_NETWORK_RULES = (SPCS_LLM.MODELS.SPCS_LLM_EGRESS) ENABLED = TRUE;
GRANT USAGE ON INTEGRATION SPCS_LLM_EGRESS_EAI TO ROLE SPCS_LLM_DEPLOYER;

-- Snowflake OAuth for Dataiku: each DSS user authorises once (Profile & Settings → Credentials) and calls the
-- services as themselves. ACCOUNTADMIN, SECURITYADMIN and ORGADMIN cannot sign in through it.
CREATE SECURITY INTEGRATION IF NOT EXISTS SPCS_LLM_DATAIKU_OAUTH
  TYPE = OAUTH ENABLED = TRUE
  OAUTH_CLIENT = CUSTOM
  OAUTH_CLIENT_TYPE = 'CONFIDENTIAL'
  OAUTH_REDIRECT_URI = 'https://dss.mycompany.com/dip/api/oauth2-callback'
  OAUTH_ISSUE_REFRESH_TOKENS = TRUE
  OAUTH_REFRESH_TOKEN_VALIDITY = 7776000;
-- Re-running with another DSS URL updates the redirect of an existing integration. ALTER keeps its client id,
-- secret and the users' consents, which CREATE OR REPLACE would reset (every DSS user would authorise again).
ALTER SECURITY INTEGRATION SPCS_LLM_DATAIKU_OAUTH SET
  OAUTH_REDIRECT_URI = 'https://dss.mycompany.com/dip/api/oauth2-callback'
  OAUTH_ALLOW_NON_TLS_REDIRECT_URI = FALSE;
-- Paste OAUTH_CLIENT_ID / OAUTH_CLIENT_SECRET into the "Snowflake OAuth (per user)" preset in DSS:
SELECT SYSTEM$SHOW_OAUTH_CLIENT_SECRETS('SPCS_LLM_DATAIKU_OAUTH');

-- 2. Registry objects, as the deployer ------------------------------------------------------------------------
USE ROLE SPCS_LLM_DEPLOYER;
USE WAREHOUSE SPCS_LLM_WH;
USE SCHEMA SPCS_LLM.MODELS;
-- Optional since snowflake-ml 1.11 (a hidden default repository is used otherwise); named here so teardown finds it.
CREATE IMAGE REPOSITORY IF NOT EXISTS SPCS_LLM.MODELS.IMAGES;
-- Only for gated models: a Hugging Face read token, used by Snowflake to download the weights.
-- Gated in the catalog: llama-2-7b-chat, mistral-7b-instruct, llama-3.1-8b-instruct, llama-3.2-3b-instruct, mistral-7b-instruct-v0.3 (and any other gated Hub id you deploy).
-- Uncomment, put the token in place of the placeholder in your worksheet (never in a file you commit).
-- CREATE SECRET IF NOT EXISTS SPCS_LLM.MODELS.HF_TOKEN TYPE = GENERIC_STRING SECRET_STRING = '<your Hugging Face read token>';

-- 3. After `spcs-llm deploy <model>` (it runs these for you) -----------------------------------------------------
-- Let the caller role use the service's endpoints:
--   GRANT SERVICE ROLE SPCS_LLM.MODELS.<SERVICE>!ALL_ENDPOINTS_USAGE TO ROLE SPCS_LLM_USER;
-- Find the ingress host to paste into Dataiku:
--   SHOW ENDPOINTS IN SERVICE SPCS_LLM.MODELS.<SERVICE>;   -- column ingress_url, endpoint "inference"

-- 4. Optional: a service account instead of per-user OAuth (the "Snowflake service account" preset) ---------------
-- USE ROLE ACCOUNTADMIN;
-- CREATE USER IF NOT EXISTS SPCS_LLM_SERVICE TYPE = SERVICE DEFAULT_ROLE = SPCS_LLM_USER;
-- GRANT ROLE SPCS_LLM_USER TO USER SPCS_LLM_SERVICE;
-- Key pair:  ALTER USER SPCS_LLM_SERVICE SET RSA_PUBLIC_KEY = '<public key>';
-- Or a PAT (needs a network policy or an authentication policy with PAT_POLICY):
--   ALTER USER SPCS_LLM_SERVICE ADD PROGRAMMATIC ACCESS TOKEN DATAIKU ROLE_RESTRICTION = 'SPCS_LLM_USER' DAYS_TO_EXPIRY = 90;
