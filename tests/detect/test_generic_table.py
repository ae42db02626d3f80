"""The generic rules as a table: ``(line, should_flag)`` in the shapes real config and code use.

Each line is scanned alone by the whole built-in ruleset; ``should_flag`` says whether a generic
rule (``generic = true``) reports it. Random parts are example templates (docs/rules.md), filled
afresh on every run: the seed is in each failure, replay with LAYERLEAK_EXAMPLE_SEED=<seed>.
The rows cover key names (snake_case, kebab-case, camelCase, PascalCase, dotted), assignment
forms (``=``, ``:=``, ``?=``, ``::=``, ``=>``, ``:``), calls (``setProperty("k", "v")``), YAML,
TOML, INI, JSON, XML elements and attributes (and a value on the line after its tag), and the
near misses that must stay quiet: references, templates, placeholders, type annotations,
identifiers, pagination tokens and prose.
"""

from __future__ import annotations

import os
import random

import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.examples import expand
from layerleak.detect.rules import load_rules

SEED = int(os.environ.get("LAYERLEAK_EXAMPLE_SEED") or random.SystemRandom().randrange(2**32))
RULES = load_rules()
ENGINE = Engine(RULES)
GENERIC = {r.id for r in RULES if r.generic}

PW = "{{alnum:10}}!{{alnum:6}}"  # a password-like literal
TOK = "{{alnum:32}}"  # a token-like literal

FLAG: list[str] = [
    # --- .env, shell, Dockerfile, build history
    f"DB_PASSWORD={PW}",
    f"export MYSQL_ROOT_PASSWORD={PW}",
    f"export API_KEY='{TOK}'",
    f'export GITHUB_TOKEN="{TOK}"',
    "ENV SECRET_KEY_BASE={{hex:64}}",
    f"ARG NPM_TOKEN={TOK}",
    f"|2 BUILD_ENV=prod NPM_TOKEN={TOK} /bin/sh -c npm ci",
    f"/bin/sh -c #(nop)  ENV REDIS_PASSWORD={PW}",
    f"RUN echo 'password={PW}' > /etc/app.conf",
    f"REGISTRY_PASSWORD={PW} docker login registry.internal.test",
    f"SMTP_PASS={PW}",
    f"ADMIN_PWD={PW}",
    f"APP_SECRET={TOK}",
    f"JWT_SECRET={TOK}",
    f"AUTH_TOKEN={TOK}",
    f"SESSION_SECRET={TOK}",
    f"CLIENT_SECRET={TOK}",
    f"POSTGRES_PASSWORD={PW}",
    f"RABBITMQ_DEFAULT_PASS={PW}",
    f"MINIO_SECRET_KEY={TOK}",
    f"set PASSWORD={PW}",
    f"$env:API_KEY = '{TOK}'",
    # --- Makefiles: ?=, :=, ::=
    f"DB_PASSWORD ?= {PW}",
    f"API_TOKEN := {TOK}",
    f"SECRET_KEY ::= {TOK}",
    f"REGISTRY_PASS?={PW}",
    f"deploy_token:={TOK}",
    # --- YAML (compose, k8s, CI, Ansible, Helm values)
    f"  secret: {TOK}",
    f"    password: {PW}",
    f'  db_password: "{PW}"',
    f"      MYSQL_PASSWORD: {PW}",
    f"  apiKey: {TOK}",
    f"  clientSecret: {TOK}",
    f"  accessToken: {TOK}",
    f'  authToken: "{TOK}"',
    f"  dbPassword: '{PW}'",
    f"  DbPassword: {PW}",
    f"  ClientSecret: {TOK}",
    f"  adminPass: {PW}",
    f"  smtpPwd: {PW}",
    f"  api-key: {TOK}",
    f"  webhook_secret: {TOK}",
    f"  spring.datasource.password: {PW}",
    f"- name: DB_PASSWORD\n  value: {PW}",
    f"        - name: API_TOKEN\n          value: \"{TOK}\"",
    f'{{"name": "DB_PASSWORD", "value": "{PW}"}}',
    f"ansible_become_password: {PW}",
    f"ansible_ssh_pass: {PW}",
    f"  master_password: {PW}",
    f"  root_password: {PW}",
    f"redis_password: {PW}",
    # --- TOML, INI, properties
    f'password = "{PW}"',
    f"api_token = '{TOK}'",
    f'"password" = "{PW}"',
    f"[database]\npassword = {PW}",
    f"Password = {PW}",
    f"db.password={PW}",
    f"jdbc.password = {PW}",
    f"spring.mail.password: {PW}",
    f"mail.smtp.password={PW}",
    f"keystore.password={PW}",
    f"oauth.client.secret={TOK}",
    f"sonar.login.token={TOK}",
    f"app.secret-key={TOK}",
    # --- JSON
    f'{{"password": "{PW}"}}',
    f'{{"apiToken":"{TOK}"}}',
    f'{{"ClientSecret": "{TOK}"}}',
    f'{{"client_id": "app", "client_secret": "{TOK}"}}',
    f'{{"auth": {{"bearerToken": "{TOK}"}}}}',
    f'  "api_key": "{TOK}",',
    f'  "db_pass": "{PW}",',
    '{"refresh_token": "{{b64url:64}}"}',
    f'{{"privateToken": "{TOK}"}}',
    # --- code: Python
    f'PASSWORD = "{PW}"',
    f"SECRET_KEY = '{TOK}'",
    f'conn = psycopg2.connect(host="db", user="app", password="{PW}")',
    f'client = Client(api_key="{TOK}")',
    f'os.environ.setdefault("SECRET_KEY", "{TOK}")',
    f'password = os.getenv("DB_PASSWORD", "{PW}")',
    f'settings = {{"api_key": "{TOK}"}}',
    f"    self.password = '{PW}'",
    f'requests.get(url, auth=("admin", "{PW}"), headers={{"X-Api-Key": "{TOK}"}})',
    # --- code: JavaScript / TypeScript
    f"const apiToken = '{TOK}';",
    f'const dbPassword = "{PW}";',
    f"let clientSecret = `{TOK}`;",
    f'  apiKey: "{TOK}",',
    f"module.exports = {{ secret: '{TOK}' }};",
    f"process.env.DB_PASSWORD = '{PW}';",
    f"config.set('password', '{PW}');",
    f'const options = {{ password: "{PW}" }};',
    f'  "auth.token": "{TOK}",',
    # --- code: Java, Kotlin, Scala, Groovy
    f'String dbPassword = "{PW}";',
    f'private static final String API_KEY = "{TOK}";',
    f'props.setProperty("db.password", "{PW}");',
    f'System.setProperty("javax.net.ssl.keyStorePassword", "{PW}");',
    f'map.put("password", "{PW}");',
    f'config.put("client_secret", "{TOK}");',
    f'properties.put("sasl.jaas.password", "{PW}");',
    f'val apiKey = "{TOK}"',
    f'def password = "{PW}"',
    f'env.put("ACCESS_TOKEN", "{TOK}");',
    # --- code: Go, Rust, C#, C, PHP, Ruby, Perl
    f'password := "{PW}"',
    f'const apiKey = "{TOK}"',
    f'var dbPassword = "{PW}"',
    f'os.Setenv("DB_PASSWORD", "{PW}")',
    f'let api_key = "{TOK}";',
    f'var clientSecret = "{TOK}";',
    f'options.ClientSecret = "{TOK}";',
    f'public string Password = "{PW}";',
    f'#define API_KEY "{TOK}"',
    f'char *password = "{PW}";',
    f"$password = '{PW}';",
    f"'password' => '{PW}',",
    f"define('DB_PASSWORD', '{PW}');",
    f"$config['api_key'] = '{TOK}';",
    f"  :password => '{PW}',",
    f"  password: '{PW}',",
    f"ENV['SECRET_KEY_BASE'] ||= '{TOK}'",
    f"my $password = '{PW}';",
    # --- connection strings and CLI flags
    f"Server=db;Database=app;User Id=sa;Password={PW};",
    f'"ConnectionStrings": {{"Default": "Host=db;Username=app;Password={PW}"}}',
    f"mysqldump --password={PW} app",
    f"app --api-key={TOK} --verbose",
    f"  --db-password={PW} \\",
    # --- Terraform / HCL
    f'  password = "{PW}"',
    f'  master_password = "{PW}"',
    f'  client_secret   = "{TOK}"',
    # --- XML: elements, a value on the line after its tag, attributes
    f"<password>{PW}</password>",
    f"<server><id>internal</id><username>ci</username><password>{PW}</password></server>",
    f"<password>\n    {PW}\n</password>",
    f"<Password>{PW}</Password>",
    f"<dbPassword>{PW}</dbPassword>",
    f"<apiKey>{TOK}</apiKey>",
    f"<secret>{TOK}</secret>",
    f"<jdbc.password>{PW}</jdbc.password>",
    f"<accessToken>\n  {TOK}\n</accessToken>",
    f'<add key="ClearTextPassword" value="{PW}" />',
    f'<add key="ApiKey" value="{TOK}"/>',
    f'<add key="ClientSecret" value="{TOK}" />',
    f'<property name="hibernate.connection.password" value="{PW}"/>',
    f'<property name="password" value="{PW}"/>',
    f'<param name="apiToken" value="{TOK}"/>',
    f'<entry key="db.password">{PW}</entry>',
    f'<entry key="secret" value="{TOK}"/>',
    f'<user name="admin" password="{PW}"/>',
    f'<datasource user="app" password="{PW}" url="jdbc:postgresql://db/app"/>',
    f'<setting name="SmtpPassword" value="{PW}"/>',
]

QUIET: list[str] = [
    # --- references to a secret kept elsewhere
    'password = os.environ["DB_PASSWORD"]',
    "password = os.getenv('DB_PASSWORD')",
    'password = os.getenv("DB_PASSWORD", "")',
    "DB_PASSWORD=${DB_PASSWORD}",
    "DB_PASSWORD=$DB_PASSWORD",
    "password: ${DB_PASSWORD:-}",
    "password=$(cat /run/secrets/db_password)",
    "API_TOKEN ?= $(shell cat .token)",
    "SECRET_KEY := $(SECRET_KEY)",
    "token: process.env.GITHUB_TOKEN",
    "apiKey: process.env.API_KEY,",
    "const apiToken = process.env.API_TOKEN;",
    "password = settings.DB_PASSWORD",
    "password = config.get('db', 'password')",
    "token = get_token(user)",
    "password = getPassword()",
    'password: "{{ vault_db_password }}"',
    "password: {{ .Values.db.password }}",
    "password: !vault |",
    "<password>${env.MAVEN_PASSWORD}</password>",
    '<add key="ClearTextPassword" value="%NUGET_PASSWORD%" />',
    '<add key="ClearTextPassword" value="$(NugetPassword)" />',
    '<property name="password" value="${db.password}"/>',
    'props.setProperty("db.password", password);',
    'props.setProperty("db.password", System.getenv("DB_PASSWORD"));',
    'map.put("password", user.getPassword());',
    'map.put("password", "");',
    'os.Setenv("DB_PASSWORD", pw)',
    "password := os.Getenv(\"DB_PASSWORD\")",
    "ENV['SECRET_KEY_BASE']",
    "password_file=/run/secrets/db_password",
    "password_file: /etc/app/password.txt",
    "token_url: https://auth.internal.test/oauth/token",
    "api_key_path = '~/.config/app/key'",
    "secretName: db-credentials-prod",
    "secret_name: my_app_credentials",
    "secretKeyRef:",
    "  secretKeyRef: {name: app-secrets, key: password}",
    'secret = "secret/data/app/prod"',
    "password = %(db_password)s",
    "password=%DB_PASSWORD%",
    "password=@DB_PASSWORD@",
    "password: <%= ENV['DB_PASSWORD'] %>",
    "spring.datasource.password=${SPRING_DATASOURCE_PASSWORD}",
    "password = keyring.get_password('app', 'user')",
    "ARG NPM_TOKEN",
    "ENV DB_PASSWORD=",
    # --- placeholders, defaults and redactions
    'password = "changeme"',
    "password: change_me_please",
    "api_key: <your-api-key>",
    'api_key = "<API_KEY>"',
    'password: "********"',
    "password=***",
    'apiToken: "YOUR_API_TOKEN"',
    'apiKey: "your-api-key-here"',
    "secret: REPLACE_ME_WITH_SECRET",
    "password: xxxxxxxxxxxx",
    'password = "example-password"',
    "PASSWORD=placeholder",
    "password: dummy-password",
    "password = sample_password_1",
    "password: [REDACTED]",
    "password: <redacted>",
    "password: postgres",
    "password: mysql",
    "POSTGRES_PASSWORD=postgres",
    "RABBITMQ_DEFAULT_PASS=guest",
    "password=changeit",
    "password: admin",
    "password = None",
    "password: null",
    "password: ''",
    'password: ""',
    "password: true",
    "PASSWORD=12345678",
    "PASSWORD=abcdefgh1",
    "secret = 'aaaaaaaaaaaaaaaa'",
    "password = 'abababab'",
    "PASSWORD=short7",
    "password: {{lower:4}}",
    "pwd=1234",
    # --- types, signatures, annotations
    "password: string",
    "password: String",
    "password: str",
    "password: Optional[str] = None",
    "token: str",
    "apiKey: string;",
    "  clientSecret?: string;",
    "password: ReadableBuffer",
    "def derive(password: ReadableBuffer, salt: ReadableBuffer) -> bytes: ...",
    "func Login(user string, password string) error {",
    "public void setPassword(String password) {",
    "password: SecretStr = Field(...)",
    "private String password;",
    "@Value(\"${db.password}\")",
    "password: @Value",
    "password: std::string",
    # --- identifiers as values, words that contain the key names
    'passwordField = "password_input"',
    'passwordInput = "login-password-field"',
    'tokenType = "bearer"',
    'token_type: "Bearer"',
    "passive = true",
    'compass_heading = "northwest1"',
    "bypass: Intermediate",
    "bypass_cache = enabled123",
    'passport = "P12345678X"',
    "OLDPWD=/usr/src/app/node_modules",
    "PWD=/usr/src/app",
    "passwordPolicy: MinLength8Upper",
    "password_hash_algorithm = argon2id",
    "password_min_length = 12",
    "password.encoder=bcrypt",
    "secret_type = kubernetes.io/tls",
    "tokenizer = WordPieceTokenizer",
    "token_endpoint_auth_method: client_secret_basic",
    "secretRef: my-app-credentials",
    'secret: "MyDbSecret"',
    "secret: SuperSecretName",
    'api_key_header = "X-Api-Key"',
    "password: ParseFloatPasswordHelper",
    "password = PasswordHasher",
    "token: NEXT_PAGE",
    "token = tokens.next()",
    # --- pagination, idempotency and CSRF tokens (not credentials)
    '{"Items": [], "NextToken": "{{b64:60}}"}',
    '{"nextPageToken": "{{b64:40}}"}',
    '{"ClientToken": "{{hex:32}}"}',
    '{"continuationToken": "{{b64:40}}"}',
    '{"pageToken": "{{b64url:40}}"}',
    '{"csrfToken": "{{b64url:40}}"}',
    '<input type="hidden" name="csrfToken" value="{{hex:40}}">',
    "<NextToken>{{b64:48}}</NextToken>",
    "<NextContinuationToken>{{b64:48}}</NextContinuationToken>",
    '{"cancellationToken": "{{hex:32}}"}',
    # --- digests and hashes
    '"integrity": "sha512-{{b64:86}}=="',
    "password_sha256: {{hex:64}}",
    "secret checksum: sha256:{{hex:64}}",
    # --- XML near misses
    "<password/>",
    "<password></password>",
    "<password>\n</password>",
    "<passwordPolicy>strict-policy</passwordPolicy>",
    '<add key="ClearTextPassword" value="" />',
    '<add key="Username" value="{{alnum:12}}"/>',
    '<add key="PasswordExpiryDays" value="90"/>',
    '<property name="password.encoder" value="bcrypt"/>',
    '<property name="passwordField" value="j_password"/>',
    '<input type="password" name="password" value="">',
    '<input type="password" name="password" placeholder="Enter your password">',
    '<entry key="password"></entry>',
    "<token>${CI_TOKEN}</token>",
    "<secret>{{ secret_value }}</secret>",
    # --- calls that are not secrets
    'log.info("password", "reset requested for user")',
    'translate("password", "Mot de passe")',
    'props.setProperty("password.length", "16")',
    'map.put("passwordLabel", "Enter password")',
    'setProperty("secret", secretValue)',
    'os.environ.setdefault("SECRET_KEY", os.urandom(32).hex())',
    'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")',
    # --- prose and UI strings
    "The password must be at least 8 characters.",
    "Enter your API key:",
    'label: "Password"',
    'placeholder="Enter password"',
    "# password = <your password here>",
    "The Authorization header carries a bearer token.",
    'printf("password: %s\\n", pw);',
    'fmt.Printf("token: %v\\n", tok)',
    "error: password authentication failed for user app",
    "Password: ",
    "proxy_url=\"socks5h://<username>:<password>@proxy-host\"",
    '"Resource": "arn:aws:secretsmanager:*:*:secret:app-db-{{alnum:6}}"',
    '"AWS::SecretsManager::Secret": "{{hex:16}}",',
    # --- a UUID alone is an id, not a secret (for the generic rules)
    "client_secret_id = {{hex:8}}-{{hex:4}}-{{hex:4}}-{{hex:4}}-{{hex:12}}",
]

ROWS = [(line, True) for line in FLAG] + [(line, False) for line in QUIET]


def test_the_table_is_large() -> None:
    assert len(ROWS) >= 200, len(ROWS)
    assert len(set(ROWS)) == len(ROWS), "duplicate rows"


@pytest.mark.parametrize(("template", "should_flag"), ROWS, ids=[f"{i}" for i in range(len(ROWS))])
def test_generic_rules(template: str, should_flag: bool) -> None:
    text = expand(template, random.Random(f"{SEED}/{template}"))
    found = [(m.rule_id, m.secret) for m in ENGINE.scan(text.encode("latin-1")) if m.rule_id in GENERIC]
    if should_flag:
        assert found, f"not flagged (seed {SEED}): {text!r}"
    else:
        assert not found, f"flagged {found} (seed {SEED}): {text!r}"


def test_long_tokens_in_json_are_found_whole() -> None:
    """AWS SSO cache ``accessToken`` and MSAL cache refresh-token ``secret`` values run past 200
    characters; they are reported whole."""
    rng = random.Random(f"{SEED}/long")
    for key, length in (("accessToken", 900), ("secret", 1400), ("refresh_token", 320)):
        value = expand(f"{{{{b64url:{length}}}}}", rng)
        text = f'{{"startUrl": "https://sso.internal.test/start", "{key}": "{value}", "x": 1}}'
        found = [m.secret for m in ENGINE.scan(text.encode()) if m.rule_id in GENERIC]
        assert found == [value], (key, SEED)
