-- Run once by the postgres image on an empty data directory (docker-compose.yml): the apps'
-- databases beside the IdP's `portail`, owned by the same role. Each app migrates its own.
CREATE DATABASE sam OWNER portail;
CREATE DATABASE repernet OWNER portail;
CREATE DATABASE catalogue OWNER portail;
